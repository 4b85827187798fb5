"""Publishing: KPI alert emails and the daily ops report, only after validation passed."""
