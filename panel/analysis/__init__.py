"""For researchers: agreement statistics, bootstrap intervals, and their plots (the `analysis` extra)."""
