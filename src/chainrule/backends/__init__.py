"""Array backends: which array library (namespace) and device a tensor's data lives on."""
