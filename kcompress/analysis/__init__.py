"""Analysis of saved runs: fits, structure functions, reports (numpy/scipy/matplotlib only)."""
