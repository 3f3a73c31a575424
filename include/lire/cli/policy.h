// A policy as lire-sample and lire-eval use it: the model (plus a merged PEFT
// adapter) and its tokenizer, prompts tokenised by the data rule
// (data/candidate_list.h: [BOS] + template(prompt) [+ EOS for T5], prompt
// truncation), and
// sampled responses with their token ids, text and log-probs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lire/config/sample_options.h"
#include "lire/data/candidate_list.h"
#include "lire/data/tokenizer.h"
#include "lire/models/language_model.h"
#include "lire/models/weights.h"

namespace lire::cli {

struct SampledResponse {
  // The generated tokens, with the EOS that ended the response (finish "eos"),
  // so that they train a policy to stop exactly as text responses with EOS do.
  std::vector<std::int64_t> ids;
  std::string text;        // decoded (no EOS); "" when the policy folder has no tokenizer
  double logprob = 0.0;    // log pi(ids | prompt) at temperature 1, EOS included
  std::string finish;      // "eos", "stop" (a stop string) or "length"
};

class Policy {
 public:
  // Loads FOLDER (+ ADAPTER merged in); the tokenizer when the folder has one.
  // `role` names it in the log ("policy", "reference").
  Policy(const std::string& folder, const std::string& adapter, const models::LoadOptions& load,
         const std::string& role = "policy");
  ~Policy();

  // A Llama-family causal LM or a T5 (by the folder's config.json).
  const models::LanguageModel& model() const { return model_; }
  const std::string& folder() const { return folder_; }
  // The folder's tokenizer, or nullptr (pre-tokenized prompts only; no text out).
  const data::Tokenizer* tokenizer() const { return tokenizer_.get(); }

  // The prompt's tokens by the data rule (its responses are ignored).
  std::vector<std::int64_t> prompt_ids(const data::CandidateList& list, const data::TokenizeOptions& options) const;

  // options.generate.num_samples responses for each prompt, [prompt][sample];
  // keys[i] names prompt i's random streams (its record index in the input,
  // so a resumed or re-batched run draws the same responses).
  std::vector<std::vector<SampledResponse>> sample(const std::vector<std::vector<std::int64_t>>& prompts,
                                                   const std::vector<std::uint64_t>& keys,
                                                   const config::SampleOptions& options);

 private:
  std::string folder_;
  models::LanguageModel model_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
};

}  // namespace lire::cli
