// lire-merge: fold a PEFT LoRA adapter into its base model and write a
// complete Hugging Face folder (config, safetensors, tokenizer files).
#include <iostream>

#include <CLI/CLI.hpp>

#include "lire/cli/command.h"
#include "lire/models/export.h"

int main(int argc, char** argv) {
  std::string model, adapter, output;
  lire::models::ExportOptions options;
  lire::cli::Tool tool;
  tool.name = "lire-merge";
  tool.description = "Merge a PEFT LoRA adapter into its base model and export a Hugging Face folder.";
  tool.add_flags = [&](CLI::App& app) {
    app.add_option("--model", model, "base model folder (HF format)")->required();
    app.add_option("--adapter", adapter, "PEFT LoRA adapter folder")->required();
    app.add_option("--output", output, "output folder (written atomically)")->required();
    app.add_option("--dtype", options.dtype, "saved dtype: auto (the base's torch_dtype), fp32, bf16, fp16")
        ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp16"}));
    app.add_option("--max-shard-bytes", options.max_shard_bytes, "largest safetensors shard (default 5e9)");
    app.add_flag("--overwrite", options.overwrite, "replace a non-empty output folder");
  };
  tool.body = [&](const lire::config::Config&) {
    lire::models::merge_adapter_to_folder(model, adapter, output, options);
    std::cout << "merged " << adapter << " into " << model << " -> " << output << "\n";
    return 0;
  };
  return lire::cli::run(tool, argc, argv);
}
