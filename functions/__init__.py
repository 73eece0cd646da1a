"""Deployed code: the two Lambda functions and the contract they share."""
