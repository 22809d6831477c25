"""Conditional-open data products: who may have their data, requests and
grants, agreements, deadlines and the audit trail."""
