"""Measuring recchat: prompt regression suites (`suite`) and offline ranking evaluation on real data (`offline`)."""
