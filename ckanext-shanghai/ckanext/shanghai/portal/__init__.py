"""The public portal: pages, template helpers, statistics, download counts,
the DCAT export profile and the demo content."""
