"""Through-plane super-resolution of thick-slice volumes (SR4ZCT and interpolation baselines)."""
