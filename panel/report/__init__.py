"""From stored reviews to the comparison record and every file written from it."""
