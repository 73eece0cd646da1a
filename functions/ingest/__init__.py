"""The ingest function: POST /leads -> validate -> envelope -> SQS, answering fast."""
