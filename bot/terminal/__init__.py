"""The terminal front end: every runbook verb from `flk`, for the day Slack is down."""
