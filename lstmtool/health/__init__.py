"""`lstmtool health`: diagnose recurrent weights from the file alone (diagnose), render a page (page)."""
