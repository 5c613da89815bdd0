"""What a run does: plan it, send it within limits and a budget, price it, show progress."""
