"""The SMPP 3.4 front door: SMPP clients (ESMEs) bind here and send into the same durable
pipeline as HTTP requests, with the same accounts and limits, and get their receipts back."""
