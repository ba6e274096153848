"""The Office 365 Reporting Web Service (reporting.svc): reports, paging, discovery, detail."""
