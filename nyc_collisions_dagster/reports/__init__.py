"""What people look at: the dashboard asset and the page's build (tables in, HTML out)."""
