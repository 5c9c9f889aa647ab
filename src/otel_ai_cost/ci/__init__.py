"""CI pieces: the GitHub Actions step summary (`step_summary`), Claude Code in CI (`claude_code`)."""
