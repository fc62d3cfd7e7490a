"""What the observatory publishes from the warehouse's views: SDMX (``sdmx``) and the monthly
bulletin (``bulletin``)."""
