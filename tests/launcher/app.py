"""A user's program, unmodified: it knows nothing of otel-ai-cost."""

import os

import anthropic
import openai

oai = openai.OpenAI(base_url=os.environ["STAND_IN_OPENAI"], api_key="sk-launcher-secret", max_retries=0)
oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
for _ in oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True):
    pass
anth = anthropic.Anthropic(base_url=os.environ["STAND_IN_ANTHROPIC"], api_key="sk-ant-launcher", max_retries=0)
anth.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
print("app done")
