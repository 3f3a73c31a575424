#!/usr/bin/env python3
"""Writes configs/data/tiny/{train,eval}.jsonl: the synthetic candidate lists of
configs/tiny.yaml. Each prompt has 4 responses of 5 words; a response's reward
is the number of words it takes from the "good" set (the rest come from the
"bad" set), plus a little noise to break ties. A policy can learn the ordering
only by preferring the good words, so held-out pairwise accuracy measures what
training taught it. Deterministic (fixed seed); run from the repository root.
"""
import json
import random

GOOD = ["kind", "clear", "honest", "helpful", "careful", "polite", "useful", "gentle"]
BAD = ["rude", "vague", "wrong", "lazy", "harsh", "messy", "silly", "bleak"]
TOPICS = ["the river", "a garden", "the moon", "old maps", "bread", "the sea", "winter", "music",
          "a village", "clocks", "the forest", "trains", "letters", "a bridge", "rain", "stars"]
ASKS = ["Tell me about", "Write a line on", "Describe", "Say something about"]


def make(rng, n, start):
    out = []
    for i in range(n):
        prompt = f"{rng.choice(ASKS)} {rng.choice(TOPICS)}."
        counts = rng.sample(range(6), 4)  # distinct numbers of good words, 0..5
        responses, rewards = [], []
        for c in counts:
            words = rng.sample(GOOD, c) + rng.sample(BAD, 5 - c)
            rng.shuffle(words)
            responses.append(" ".join(words) + ".")
            rewards.append(round(c + rng.uniform(-0.1, 0.1), 3))
        out.append({"id": f"tiny-{start + i}", "prompt": prompt, "responses": responses, "rewards": rewards})
    return out


def main():
    rng = random.Random(20241122)
    for name, n, start in (("train", 256, 0), ("eval", 64, 10000)):
        with open(f"configs/data/tiny/{name}.jsonl", "w") as f:
            for rec in make(rng, n, start):
                f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
