#include "lire/models/export.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lire/config/config_tree.h"
#include "lire/core/error.h"
#include "lire/io/safetensors.h"
#include "lire/models/language_model.h"

namespace lire::models {
namespace {

namespace fs = std::filesystem;

// Files of a model folder that are not weights and travel with the export.
const char* kCopied[] = {"tokenizer.model",         "spiece.model",         "tokenizer_config.json",
                         "special_tokens_map.json", "added_tokens.json",    "tokenizer.json",
                         "generation_config.json",  "chat_template.jinja"};

torch::Dtype save_dtype(const std::string& dtype, const std::string& config_dtype) {
  const std::string d = dtype == "auto" ? config_dtype : dtype;
  if (d == "fp32" || d == "float32") return torch::kFloat32;
  if (d == "bf16" || d == "bfloat16") return torch::kBFloat16;
  if (d == "fp16" || d == "float16") return torch::kHalf;
  throw ConfigError(str("export dtype '", dtype, "' is not one of auto, fp32, bf16, fp16"));
}

}  // namespace

std::string hf_dtype_name(torch::Dtype d) {
  return d == torch::kFloat64 ? "float64" : d == torch::kBFloat16 ? "bfloat16" : d == torch::kHalf ? "float16" : "float32";
}

void save_hf_folder(torch::nn::Module& model, const std::string& source_folder, const std::string& output,
                    const ExportOptions& options) {
  const fs::path src(source_folder), out(output);
  std::ifstream config_in(src / "config.json");
  LIRE_CHECK(config_in.good(), source_folder, "/config.json: cannot read");
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(config_in);
  const auto dtype = save_dtype(options.dtype, config.value("torch_dtype", std::string("float32")));
  if (fs::exists(out) && !fs::is_empty(out) && !options.overwrite)
    throw Error(str(output, ": exists and is not empty (choose another folder or overwrite)"));

  config::write_folder_atomically(output, [&](const std::string& tmp_folder) {
    const fs::path tmp(tmp_folder);
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    std::uint64_t total = 0;
    for (const auto& p : model.named_parameters()) {
      LIRE_CHECK(p.key().find(".lora_") == std::string::npos, "save_hf_folder: tensor '", p.key(),
                 "' is a LoRA adapter; merge adapters first");
      tensors.emplace_back(p.key(), p.value().detach().to(torch::kCPU, dtype).contiguous());
      total += tensors.back().second.nbytes();
    }
    if (total <= options.max_shard_bytes)
      io::save_safetensors((tmp / "model.safetensors").string(), tensors);
    else
      io::save_sharded_safetensors(tmp.string(), tensors, options.max_shard_bytes);
    config["torch_dtype"] = hf_dtype_name(dtype);
    config::write_file_atomically((tmp / "config.json").string(), config.dump(2) + "\n");
    for (const char* name : kCopied)
      if (fs::exists(src / name)) fs::copy_file(src / name, tmp / name);
  });
}

void merge_adapter_to_folder(const std::string& model_folder, const std::string& adapter_folder,
                             const std::string& output, const ExportOptions& options) {
  LoadOptions load;
  load.device = "cpu";
  load.dtype = "fp32";  // merge in float32, save in the export dtype
  load.adapter = adapter_folder;
  const auto model = load_language_model(model_folder, load);  // a Llama-family causal LM or a T5
  save_hf_folder(*model, model_folder, output, options);
}

}  // namespace lire::models
