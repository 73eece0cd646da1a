"""The whole pipeline on one machine: embedded PostgreSQL, moto SQS over HTTP, the real handlers."""
