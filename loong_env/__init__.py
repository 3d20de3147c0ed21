"""loong_env: verifiable reasoning problems for RL on LLMs, grown from small hand-checked seeds."""
