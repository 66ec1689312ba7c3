"""``python -m bgrefresh_policy``: azure-core's policy and ours, side by side, on loopback."""
