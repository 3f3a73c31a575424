#include "lire/cli/policy.h"

#include <filesystem>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/generate/generate.h"

namespace lire::cli {

namespace fs = std::filesystem;

Policy::Policy(const std::string& folder, const std::string& adapter, const models::LoadOptions& load,
               const std::string& role)
    : folder_(folder) {
  models::LoadOptions with_adapter = load;
  with_adapter.adapter = adapter;
  model_ = models::load_language_model(folder, with_adapter);
  model_->eval();
  if (fs::exists(fs::path(folder) / "tokenizer.model") || fs::exists(fs::path(folder) / "spiece.model"))
    tokenizer_ = std::make_unique<data::Tokenizer>(data::Tokenizer::from_folder(folder));
  spdlog::info("{} {}{} ({})", role, folder, adapter.empty() ? "" : " + adapter " + adapter, model_.describe());
}

Policy::~Policy() = default;

std::vector<std::int64_t> Policy::prompt_ids(const data::CandidateList& list,
                                             const data::TokenizeOptions& tokenize) const {
  data::TokenizeOptions options = tokenize;
  options.prompt_eos = model_.is_t5();
  data::CandidateList prompt_only;  // the prompt fields alone: responses play no part
  prompt_only.prompt = list.prompt;
  prompt_only.input = list.input;
  prompt_only.system = list.system;
  prompt_only.prompt_ids = list.prompt_ids;
  prompt_only.file = list.file;
  prompt_only.line = list.line;
  if (!data::needs_tokenizer(prompt_only)) {
    return data::tokenize_pretokenized(prompt_only, model_.vocab_size(), model_.bos_id(), options).prompt_ids;
  }
  if (!tokenizer_)
    throw DataError(str(list.where(), ": the prompt is text, and ", folder_,
                        " has no tokenizer.model to encode it (give prompt_ids)"));
  return data::tokenize(prompt_only, *tokenizer_, options).prompt_ids;
}

std::vector<std::vector<SampledResponse>> Policy::sample(const std::vector<std::vector<std::int64_t>>& prompts,
                                                         const std::vector<std::uint64_t>& keys,
                                                         const config::SampleOptions& options) {
  if (!options.stop.empty() && !tokenizer_)
    throw ConfigError(str("sample.stop: stop strings need a tokenizer, and ", folder_, " has no tokenizer.model"));
  generate::StopCheck stop;
  if (!options.stop.empty()) {
    stop = [&](std::size_t, std::int64_t, const std::vector<std::int64_t>& ids) {
      const std::string text = tokenizer_->decode(ids);
      for (const auto& s : options.stop)
        if (text.find(s) != std::string::npos) return true;
      return false;
    };
  }
  torch::NoGradGuard no_grad;
  const auto generated = generate::generate(model_, prompts, options.generate, keys, stop);
  std::vector<std::vector<SampledResponse>> out(generated.size());
  for (std::size_t p = 0; p < generated.size(); ++p) {
    for (const auto& g : generated[p]) {
      SampledResponse r;
      r.ids = g.ids;
      if (tokenizer_) r.text = tokenizer_->decode(g.ids);
      if (g.finish == "eos") r.ids.push_back(g.eos_id);
      r.logprob = g.logprob;
      r.finish = g.finish;
      out[p].push_back(std::move(r));
    }
  }
  return out;
}

}  // namespace lire::cli
