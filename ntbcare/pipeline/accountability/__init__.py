"""Public accountability: each agency's figures from the audit trail, the anonymised view of tickets that the
public page, the CSV, the Open311 API and the monthly recap share, the trend chart and the recap itself."""
