// The `train`, `eval` and `output` sections.
#include "lire/config/train_options.h"

#include <limits>

#include "lire/config/section_reader.h"
#include "lire/core/error.h"

namespace lire::config {
namespace {
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
}  // namespace

TrainOptions read_train_options(SectionReader& r) {
  TrainOptions o;
  o.batch_size = r.integer("batch_size", o.batch_size, 1, kMax);
  o.grad_accum = r.integer("grad_accum", o.grad_accum, 1, kMax);
  o.epochs = r.integer("epochs", o.epochs, 1, kMax);
  o.max_steps = r.integer("max_steps", o.max_steps, 0, kMax);
  o.lr = r.number("lr", o.lr, NumberRange::positive());
  o.lr_schedule = r.choice("lr_schedule", o.lr_schedule, {"constant", "linear", "cosine"});
  o.warmup_steps = r.integer("warmup_steps", o.warmup_steps, 0, kMax);
  o.warmup_ratio = r.number("warmup_ratio", o.warmup_ratio, NumberRange::unit_interval());
  if (o.warmup_steps > 0 && o.warmup_ratio > 0)
    r.fail("warmup_ratio", str("give train.warmup_steps or train.warmup_ratio, not both (warmup_steps is ",
                               o.warmup_steps, ")"));
  o.min_lr_ratio = r.number("min_lr_ratio", o.min_lr_ratio, NumberRange::unit_interval());
  o.weight_decay = r.number("weight_decay", o.weight_decay, NumberRange::non_negative());
  o.adam_beta1 = r.number("adam_beta1", o.adam_beta1, {0.0, 1.0, false, true});
  o.adam_beta2 = r.number("adam_beta2", o.adam_beta2, {0.0, 1.0, false, true});
  o.adam_eps = r.number("adam_eps", o.adam_eps, NumberRange::positive());
  o.max_grad_norm = r.number("max_grad_norm", o.max_grad_norm, NumberRange::non_negative());
  o.reference = r.choice("reference", o.reference, {"auto", "adapter-off", "frozen-copy", "precomputed", "none"});
  o.max_sequences = r.integer("max_sequences", o.max_sequences, 1, kMax);
  o.checkpointing = r.boolean("checkpointing", o.checkpointing);
  o.max_nonfinite_steps = r.integer("max_nonfinite_steps", o.max_nonfinite_steps, 1, kMax);
  o.log_every = r.integer("log_every", o.log_every, 1, kMax);
  r.finish();
  return o;
}

EvalOptions read_eval_options(SectionReader& r) {
  EvalOptions o;
  o.every = r.integer("every", o.every, 0, kMax);
  o.at_start = r.boolean("at_start", o.at_start);
  o.batch_size = r.integer("batch_size", o.batch_size, 1, kMax);
  o.max_lists = r.integer("max_lists", o.max_lists, 0, kMax);
  o.bootstrap = r.integer("bootstrap", o.bootstrap, 1, kMax);
  o.confidence = r.number("confidence", o.confidence, {0.0, 1.0, true, true});
  o.tie_tolerance = r.number("tie_tolerance", o.tie_tolerance, NumberRange::non_negative());
  o.rewards = r.string_list("rewards", o.rewards);
  r.finish();
  return o;
}

OutputOptions read_output_options(SectionReader& r) {
  OutputOptions o;
  o.save_every = r.integer("save_every", o.save_every, 0, kMax);
  o.keep_last = r.integer("keep_last", o.keep_last, 0, kMax);
  o.keep_best = r.string("keep_best", o.keep_best);
  if (!o.keep_best.empty() && o.keep_best.rfind("eval/", 0) != 0)
    r.fail("keep_best", str("must name an eval metric (eval/loss, eval/pair_accuracy, eval/ndcg, eval/margin, "
                            "eval/best_logp, ...), got '", o.keep_best, "'"));
  o.keep_best_mode = r.choice("keep_best_mode", o.keep_best_mode, {"auto", "max", "min"});
  o.merge = r.boolean("merge", o.merge);
  o.dtype = r.choice("dtype", o.dtype, {"auto", "fp32", "bf16", "fp16"});
  r.finish();
  return o;
}

}  // namespace lire::config
