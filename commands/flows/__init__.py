"""The runbook's workflows, Slack-free: each takes typed input (who, tenant, arguments), checks
authorisation and the runbook's rules itself, writes the audit record and the timeline, and
returns a typed outcome or raises a typed error. Slack and the terminal only render them."""
