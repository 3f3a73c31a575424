#include "lire/models/weights.h"

#include <filesystem>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lire/core/error.h"
#include "lire/core/tensor_shape.h"
#include "lire/core/suggest.h"
#include "lire/core/torch_runtime.h"
#include "lire/io/hf_config.h"
#include "lire/io/peft_config.h"

namespace lire::models {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

torch::TensorOptions model_options(const LoadOptions& options) {
  const auto device = resolve_device(options.device);
  return torch::TensorOptions().dtype(resolve_dtype(options.dtype, device)).device(device);
}

void report_unused(const std::vector<std::string>& unused, const std::string& folder) {
  if (unused.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < unused.size() && i < 8; ++i) list += (i ? ", " : "") + unused[i];
  if (unused.size() > 8) list += str(", ... (", unused.size(), " in all)");
  spdlog::warn("{}: tensors the model does not use: {}", folder, list);
}

}  // namespace

torch::Dtype resolve_dtype(const std::string& dtype, const torch::Device& device) {
  if (dtype == "auto") return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  if (dtype == "fp32") return torch::kFloat32;
  if (dtype == "bf16") return torch::kBFloat16;
  if (dtype == "fp16") {
    if (!device.is_cuda())
      throw ConfigError("model.dtype: fp16 compute needs a CUDA device; use bf16 or fp32 on CPU");
    return torch::kHalf;
  }
  if (dtype == "fp64") return torch::kFloat64;
  throw ConfigError(str("model.dtype: '", dtype, "' is not one of auto, fp32, bf16, fp16, fp64"));
}

void check_floating(const torch::Tensor& source, const std::string& file, const std::string& name) {
  if (source.is_floating_point()) return;
  throw Error(str(file, ": tensor '", name, "' has dtype ", c10::toString(source.scalar_type()),
                  "; weights must be floating point (F32, BF16, F16 or F64)"));
}

std::vector<std::string> load_parameters(torch::nn::Module& module, const io::CheckpointReader& checkpoint,
                                         const std::set<std::string>& ignored) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  const auto available = checkpoint.names();
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    auto& param = item.value();
    if (!checkpoint.contains(name)) {
      throw Error(str(checkpoint.path(), ": tensor '", name, "' is missing (the model expects it with shape ",
                      shape_of(param), ")", did_you_mean(name, available)));
    }
    const auto source = checkpoint.tensor(name);
    if (source.sizes() != param.sizes()) {
      throw Error(str(checkpoint.file_of(name), ": tensor '", name, "' has shape ", shape_of(source),
                      ", the model expects ", shape_of(param)));
    }
    if (param.is_floating_point()) check_floating(source, checkpoint.file_of(name), name);
    param.copy_(source);  // converts dtype and device
    used.insert(name);
  }
  std::vector<std::string> unused;
  for (const auto& name : available) {
    if (used.count(name) || ignored.count(name)) continue;
    if (ends_with(name, ".rotary_emb.inv_freq")) continue;  // older HF checkpoints store the rope buffer
    unused.push_back(name);
  }
  return unused;
}

std::vector<std::string> merge_lora_adapter(torch::nn::Module& module, const std::string& adapter_folder) {
  torch::NoGradGuard no_grad;
  const auto config = io::read_peft_config(adapter_folder);
  const std::string file = (std::filesystem::path(adapter_folder) / "adapter_model.safetensors").string();
  LIRE_CHECK(std::filesystem::exists(file), adapter_folder,
             ": adapter_model.safetensors not found (adapter_model.bin is not supported; convert it to safetensors)");
  io::CheckpointReader adapter(file);
  auto params = module.named_parameters(/*recurse=*/true);
  const std::string prefix = "base_model.model.";
  std::vector<std::string> merged;
  std::set<std::string> consumed;
  for (const auto& name : adapter.names()) {
    if (!ends_with(name, ".lora_A.weight")) continue;
    LIRE_CHECK(name.rfind(prefix, 0) == 0, file, ": tensor '", name, "' does not start with '", prefix, "'");
    const std::string path = name.substr(prefix.size(), name.size() - prefix.size() - std::string(".lora_A.weight").size());
    const std::string b_name = prefix + path + ".lora_B.weight";
    LIRE_CHECK(adapter.contains(b_name), file, ": tensor '", name, "' has no matching '", b_name, "'");
    const std::string weight_name = path + ".weight";
    auto* weight = params.find(weight_name);
    LIRE_CHECK(weight != nullptr, file, ": tensor '", name, "' adapts '", path,
               "', which is not a module of this model");
    LIRE_CHECK(config.targets(path), file, ": tensor '", name, "' adapts '", path,
               "', which adapter_config.json's target_modules / layers_to_transform do not select");
    const auto a = adapter.tensor(name), b = adapter.tensor(b_name);
    check_floating(a, file, name);
    check_floating(b, file, b_name);
    const int64_t rank = config.rank(path);
    LIRE_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(0) == rank && b.size(1) == rank &&
                   b.size(0) == weight->size(0) && a.size(1) == weight->size(1),
               file, ": '", path, "': lora_A ", shape_of(a), " and lora_B ", shape_of(b),
               " do not fit weight ", shape_of(*weight), " with r = ", rank);
    const auto compute = weight->scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    const auto delta = torch::matmul(b.to(compute), a.to(compute)) * config.scaling(path);
    weight->copy_((weight->to(compute) + delta.to(weight->device())).to(weight->scalar_type()));
    consumed.insert(name);
    consumed.insert(b_name);
    merged.push_back(path);
  }
  for (const auto& name : adapter.names()) {
    LIRE_CHECK(consumed.count(name), file, ": tensor '", name,
               "' is not a LoRA A/B weight of a Linear module (unsupported adapter variant)");
  }
  LIRE_CHECK(!merged.empty(), file, ": no LoRA tensors found");
  return merged;
}

LlamaForCausalLM load_causal_lm(const std::string& folder, const LoadOptions& options) {
  const auto config = io::read_llama_config(folder);
  LIRE_CHECK(config.architecture.find("ForCausalLM") != std::string::npos, folder, "/config.json: architecture ",
             config.architecture, " is not a causal LM");
  LlamaForCausalLM model(config, model_options(options));
  const io::CheckpointReader checkpoint(folder);
  std::set<std::string> ignored;
  if (config.tie_word_embeddings) ignored.insert("lm_head.weight");  // HF ties it to embed_tokens
  report_unused(load_parameters(*model, checkpoint, ignored), folder);
  if (!options.adapter.empty()) merge_lora_adapter(*model, options.adapter);
  model->eval();
  return model;
}

LlamaForSequenceClassification load_sequence_classifier(const std::string& folder, const LoadOptions& options) {
  const auto config = io::read_llama_config(folder);
  LIRE_CHECK(config.architecture.find("ForSequenceClassification") != std::string::npos, folder,
             "/config.json: architecture ", config.architecture,
             " is not a sequence classifier (a reward model is LlamaForSequenceClassification)");
  LlamaForSequenceClassification model(config, model_options(options));
  const io::CheckpointReader checkpoint(folder);
  report_unused(load_parameters(*model, checkpoint), folder);
  if (!options.adapter.empty()) merge_lora_adapter(*model, options.adapter);
  model->eval();
  return model;
}

}  // namespace lire::models
