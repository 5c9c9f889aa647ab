"""CI pieces: the GitHub Actions step summary (`step_summary`), Claude Code in CI (`claude_code`), the budget
gate's summary and JSON (`budget_summary`, `budget_outputs`) and the daily workflow's Slack message
(`slack_summary`). Their Markdown tables come from `reports.markdown_tables`."""
