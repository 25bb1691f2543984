"""Tables and exports read from results: terminal tables, CSV and JSON."""
