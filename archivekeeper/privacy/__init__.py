"""GDPR requests: access export, erasure, the art. 30 records draft."""
