"""Where RL trainers meet loong_env's verifiers: each trainer's own way of asking for a reward.

- `reward_server` (+ `reward_scoring`, `reward_models`, `reward_auth`, `redact`): `loong serve-reward`, an
  HTTP reward service that speaks OpenRLHF's remote reward protocol and a typed JSON API of its own;
  `reward_client` calls it.
- `verl`: `compute_score(data_source, solution_str, ground_truth, extra_info)` for verl's
  `custom_reward_function`, and `to_verl_dataset` for its parquet files.
- `verifiers_env`: `load_environment(...)` for Prime Intellect's `verifiers` (`vf-eval loong-env`).
- `loong_env.integrations.trl` (one level up, for history): TRL GRPO reward functions.

Every integration builds `AnswerKey`s with `keys` and judges them with `VerifierRouter.judge`, so a
response earns the same reward whichever trainer asks. Heavy optional packages (fastapi, uvicorn,
verifiers) are imported only inside the module that needs them.
"""
