"""Connectors: national formats (DVCQG dossier sync, edXML, health-insurance claim XML) in, the
project's CloudEvents out, durable in Kafka before a record is answered as accepted."""
