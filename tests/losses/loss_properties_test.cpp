// Independent property tests of the loss registry (lire::losses).
//
// Every expected value here comes from the specification (issue 2, "The loss
// registry"), written out again in plain double arithmetic below (the
// `reference` function), from paper identities (DPO-BT, LIRE Eq. 9,
// Plackett-Luce), or from central finite differences. Nothing is derived from
// the implementation in src/losses. The golden-file test lives elsewhere.
//
// Suites: LossProperties (losses) and LossRegistryProps (registry, options).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lire/core/error.h"
#include "lire/losses/registry.h"

namespace {

namespace L = lire::losses;
using json = nlohmann::json;
using torch::Tensor;
using Mat = std::vector<std::vector<double>>;

constexpr auto kF64 = torch::kFloat64;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// ------------------------------------------------------------------ batches
// A batch kept on the host as plain vectors (the truth for the reference
// formulas); `build` turns it into a LossInput.
struct Batch {
  Mat logps, ref, rewards, tc;
  std::vector<std::vector<int>> mask;  // 1 = real candidate
  bool has_ref = true;
  bool has_tc = true;
  std::vector<int64_t> sft_index;  // empty: undefined
  std::vector<double> sft_nll;     // empty: undefined

  int B() const { return static_cast<int>(logps.size()); }
  int K() const { return logps.empty() ? 0 : static_cast<int>(logps[0].size()); }
  std::vector<int> valid(int b) const {
    std::vector<int> v;
    for (int k = 0; k < K(); ++k)
      if (mask[b][k]) v.push_back(k);
    return v;
  }
};

Tensor to_tensor(const Mat& m, torch::Dtype dt = kF64) {
  const int64_t B = static_cast<int64_t>(m.size());
  const int64_t K = B ? static_cast<int64_t>(m[0].size()) : 0;
  std::vector<double> flat;
  for (const auto& row : m) flat.insert(flat.end(), row.begin(), row.end());
  return torch::tensor(flat, torch::TensorOptions().dtype(kF64)).reshape({B, K}).to(dt);
}

Tensor mask_tensor(const std::vector<std::vector<int>>& m) {
  Mat d;
  for (const auto& row : m) d.emplace_back(row.begin(), row.end());
  return to_tensor(d).ne(0);
}

struct Built {
  L::LossInput in;
  Tensor leaf;      // logps as given to the loss (requires grad)
  Tensor nll_leaf;  // sft_nll (requires grad) when defined
};

Built build(const Batch& b, bool grad = true, torch::Dtype dt = kF64) {
  Built x;
  x.leaf = to_tensor(b.logps, dt);
  if (grad) x.leaf.requires_grad_(true);
  x.in.logps = x.leaf;
  if (b.has_ref) x.in.ref_logps = to_tensor(b.ref, dt);
  x.in.rewards = to_tensor(b.rewards, dt);
  x.in.mask = mask_tensor(b.mask);
  if (b.has_tc) x.in.token_counts = to_tensor(b.tc, dt);
  if (!b.sft_index.empty()) x.in.sft_index = torch::tensor(b.sft_index, torch::kInt64);
  if (!b.sft_nll.empty()) {
    x.nll_leaf = torch::tensor(b.sft_nll, torch::TensorOptions().dtype(kF64)).to(dt);
    if (grad) x.nll_leaf.requires_grad_(true);
    x.in.sft_nll = x.nll_leaf;
  }
  return x;
}

struct Eval {
  L::LossOutput out;
  double loss = 0;
  Tensor grad;      // d loss / d logps, zeros when the loss does not depend on logps
  Tensor nll_grad;  // d loss / d sft_nll when given
};

Eval run(const L::Loss& loss, const Batch& b, torch::Dtype dt = kF64) {
  Built x = build(b, true, dt);
  Eval e;
  e.out = loss.forward(x.in);
  e.loss = e.out.loss.to(kF64).item<double>();
  if (e.out.loss.requires_grad()) e.out.loss.backward();
  e.grad = x.leaf.grad().defined() ? x.leaf.grad().clone() : torch::zeros_like(x.leaf);
  if (x.nll_leaf.defined())
    e.nll_grad = x.nll_leaf.grad().defined() ? x.nll_leaf.grad().clone()
                                             : torch::zeros_like(x.nll_leaf);
  return e;
}

double value(const L::Loss& loss, const Batch& b) {
  torch::NoGradGuard guard;
  Built x = build(b, false);
  return loss.forward(x.in).loss.item<double>();
}

// Central finite differences of the loss in the valid logps entries (0 elsewhere).
Tensor fd_grad(const L::Loss& loss, Batch b, double h = 1e-6) {
  Mat g(b.B(), std::vector<double>(b.K(), 0.0));
  for (int i = 0; i < b.B(); ++i)
    for (int k : b.valid(i)) {
      const double x0 = b.logps[i][k];
      b.logps[i][k] = x0 + h;
      const double fp = value(loss, b);
      b.logps[i][k] = x0 - h;
      const double fm = value(loss, b);
      b.logps[i][k] = x0;
      g[i][k] = (fp - fm) / (2 * h);
    }
  return to_tensor(g);
}

// ------------------------------------------------------------- comparisons
::testing::AssertionResult near(double got, double want, double rtol = 1e-9, double atol = 1e-12) {
  if (std::isfinite(got) && std::fabs(got - want) <= atol + rtol * std::fabs(want))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want << " (diff "
                                       << (got - want) << ")";
}

::testing::AssertionResult close(const Tensor& got_in, const Tensor& want_in, double rtol = 1e-9,
                                 double atol = 1e-12) {
  if (!got_in.defined() || !want_in.defined())
    return ::testing::AssertionFailure() << "undefined tensor";
  Tensor got = got_in.detach().to(kF64).cpu();
  Tensor want = want_in.detach().to(kF64).cpu();
  if (got.sizes() != want.sizes())
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs " << want.sizes();
  if (got.numel() == 0) return ::testing::AssertionSuccess();
  Tensor diff = (got - want).abs();
  Tensor tol = atol + rtol * want.abs();
  const bool ok = diff.le(tol).all().item<bool>();
  if (ok) return ::testing::AssertionSuccess();
  Tensor excess = torch::where(diff.isnan(), torch::full_like(diff, kInf), diff - tol);
  const int64_t at = excess.flatten().argmax().item<int64_t>();
  return ::testing::AssertionFailure()
         << "max |diff| " << diff.nan_to_num(kInf).max().item<double>() << "; worst at flat index "
         << at << ": got " << got.flatten()[at].item<double>() << ", want "
         << want.flatten()[at].item<double>() << "\n got:\n"
         << got << "\n want:\n"
         << want;
}

::testing::AssertionResult all_zero(const Tensor& t) {
  Tensor x = t.detach().to(kF64);
  if (x.eq(0).all().item<bool>()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected exact zeros, got\n" << x;
}

::testing::AssertionResult metrics_finite(const L::LossOutput& out) {
  for (const auto& kv : out.metrics) {
    const double v = kv.second.value();
    if (!std::isfinite(v))
      return ::testing::AssertionFailure() << "metric " << kv.first << " = " << v;
    if (kv.second.sum.defined() && !std::isfinite(kv.second.sum.to(kF64).item<double>()))
      return ::testing::AssertionFailure() << "metric " << kv.first << " sum not finite";
    if (kv.second.count.defined() && !std::isfinite(kv.second.count.to(kF64).item<double>()))
      return ::testing::AssertionFailure() << "metric " << kv.first << " count not finite";
  }
  for (const char* m : {"pair_accuracy", "ndcg", "margin", "valid_pair_fraction"})
    if (!out.metrics.count(m)) return ::testing::AssertionFailure() << "metric " << m << " missing";
  return ::testing::AssertionSuccess();
}

double scalar(const Tensor& t) { return t.defined() ? t.detach().to(kF64).item<double>() : 0.0; }

// The loss formula of LossOutput, recomputed from its parts.
::testing::AssertionResult consistent(const L::LossOutput& o) {
  const double want = scalar(o.numerator) / std::max(scalar(o.denominator), 1.0) +
                      o.sft_weight * scalar(o.sft_numerator) / std::max(scalar(o.sft_denominator), 1.0);
  return near(scalar(o.loss), want, 1e-12, 1e-14);
}

std::string show(const std::string& name, const json& opts) { return name + " " + opts.dump(); }

// ---------------------------------------------------------- the reference
// The specification written out in plain doubles, one list at a time.
enum class Kind { Pointwise, Pairwise, Listwise, Sft };

Kind kind_of(const std::string& name) {
  if (name == "lipo" || name == "dpo" || name == "slic") return Kind::Pairwise;
  if (name == "point-mse" || name == "point-sigmoid") return Kind::Pointwise;
  if (name == "sft") return Kind::Sft;
  return Kind::Listwise;  // lire, nce, dpo-pl
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double logsumexp(const std::vector<double>& v) {
  const double m = *std::max_element(v.begin(), v.end());
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

struct RefVariant {
  bool zscore_sample_std = false;   // zscore with the n-1 standard deviation
  bool pairless_lists_count = false; // list-sum/list-mean: a list with a valid item but no
                                    // unit still counts in the denominator
};

struct RefOut {
  double num = 0, den = 0, sft_num = 0, sft_den = 0, sft_w = 0;
  double loss() const {
    return num / std::max(den, 1.0) + sft_w * sft_num / std::max(sft_den, 1.0);
  }
};

std::vector<double> reward_transform(const std::string& t, const std::vector<double>& r,
                                     const RefVariant& v) {
  const size_t n = r.size();
  std::vector<double> out(n);
  const double mx = *std::max_element(r.begin(), r.end());
  const double mn = *std::min_element(r.begin(), r.end());
  if (t == "softmax") {
    double z = 0;
    for (double x : r) z += std::exp(x - mx);
    for (size_t i = 0; i < n; ++i) out[i] = std::exp(r[i] - mx) / z;
  } else if (t == "raw") {
    out = r;
  } else if (t == "minmax") {
    for (size_t i = 0; i < n; ++i) out[i] = mx == mn ? 0.5 : (r[i] - mn) / (mx - mn);
  } else if (t == "zscore") {
    const double mean = std::accumulate(r.begin(), r.end(), 0.0) / n;
    double ss = 0;
    for (double x : r) ss += (x - mean) * (x - mean);
    const double sd = std::sqrt(ss / (v.zscore_sample_std ? std::max<double>(n - 1, 1) : n));
    for (size_t i = 0; i < n; ++i) out[i] = sd == 0 ? 0.0 : (r[i] - mean) / sd;
  } else {
    ADD_FAILURE() << "reference: unknown reward_transform " << t;
  }
  return out;
}

std::vector<double> label_transform(const std::string& t, const std::vector<double>& r) {
  const size_t n = r.size();
  std::vector<double> psi(n, 0.0);
  if (t == "bt-winrate") {
    for (size_t k = 0; k < n; ++k) {
      for (size_t i = 0; i < n; ++i) psi[k] += sigmoid(r[k] - r[i]);
      psi[k] /= n;
    }
  } else if (t == "rank-winrate") {
    for (size_t k = 0; k < n; ++k) {
      for (size_t i = 0; i < n; ++i) psi[k] += (r[k] > r[i] ? 1.0 : 0.0) + (r[k] == r[i] ? 0.5 : 0.0);
      psi[k] /= n;
    }
  } else if (t == "minmax") {
    const double mx = *std::max_element(r.begin(), r.end());
    const double mn = *std::min_element(r.begin(), r.end());
    for (size_t k = 0; k < n; ++k) psi[k] = mx == mn ? 0.5 : (r[k] - mn) / (mx - mn);
  } else if (t == "none") {
    psi = r;
  } else {
    ADD_FAILURE() << "reference: unknown label_transform " << t;
  }
  return psi;
}

// Indices 0..n-1 sorted by key descending, ties by index.
std::vector<int> order_desc(const std::vector<double>& key) {
  std::vector<int> o(key.size());
  std::iota(o.begin(), o.end(), 0);
  std::stable_sort(o.begin(), o.end(), [&](int a, int b) { return key[a] > key[b]; });
  return o;
}

RefOut reference(const std::string& name, const json& o, const Batch& b, RefVariant v = {}) {
  const Kind kind = kind_of(name);
  const double T = o.value("temperature", 2.0);
  const double beta = o.value("beta", name == "lipo" ? 0.05 : 0.1);
  const double delta = o.value("delta", 1.0);
  const std::string reduction = o.value("reduction", std::string("rax"));
  const std::string rt = o.value("reward_transform", std::string("softmax"));
  const std::string lt = o.value("label_transform", std::string("bt-winrate"));
  const std::string lw = o.value("lambda_weight", std::string("dcg"));
  const bool ln = o.value("length_normalize", false);
  RefOut out;
  out.sft_w = kind == Kind::Sft ? 0.0 : o.value("sft_weight", 0.0);

  // SFT term: token-mean NLL of each list's target.
  double nll_sum = 0, nll_count = 0;
  if (!b.sft_index.empty()) {
    for (int i = 0; i < b.B(); ++i) {
      const int64_t t = b.sft_index[i];
      if (t < 0) continue;
      nll_sum += b.sft_nll.empty() ? -b.logps[i][t] / b.tc[i][t] : b.sft_nll[i];
      nll_count += 1;
    }
  }
  if (kind == Kind::Sft) {
    out.num = nll_sum;
    out.den = nll_count;
    return out;
  }
  out.sft_num = nll_sum;
  out.sft_den = nll_count;

  for (int i = 0; i < b.B(); ++i) {
    const std::vector<int> idx = b.valid(i);
    if (idx.empty()) continue;
    const size_t n = idx.size();
    std::vector<double> l(n), rf(n), r(n);
    for (size_t j = 0; j < n; ++j) {
      const int k = idx[j];
      const double div = ln ? b.tc[i][k] : 1.0;
      l[j] = b.logps[i][k] / div;
      rf[j] = b.has_ref ? b.ref[i][k] / div : 0.0;
      r[j] = b.rewards[i][k];
    }
    std::vector<double> units;
    if (name == "lire") {
      const std::vector<double> R = reward_transform(rt, r, v);
      std::vector<double> lt_(n);
      for (size_t j = 0; j < n; ++j) lt_[j] = l[j] / T;
      const double lse = logsumexp(lt_);
      double u = 0;
      for (size_t j = 0; j < n; ++j) u -= std::exp(lt_[j] - lse) * R[j];
      units.push_back(u);
    } else {
      std::vector<double> s(n);
      for (size_t j = 0; j < n; ++j) s[j] = beta * (l[j] - rf[j]);
      const std::vector<double> psi = label_transform(lt, r);
      if (kind == Kind::Pairwise) {
        std::vector<double> rank(n);
        const std::vector<int> ord = order_desc(s);
        for (size_t p = 0; p < n; ++p) rank[ord[p]] = static_cast<double>(p + 1);
        for (size_t a = 0; a < n; ++a)
          for (size_t c = 0; c < n; ++c) {
            if (!(psi[a] > psi[c])) continue;
            const double z = s[a] - s[c];
            if (name == "dpo") {
              units.push_back(softplus(-z));
            } else if (name == "slic") {
              units.push_back(std::max(0.0, delta - z));
            } else {  // lipo
              const double ga = 1.0 / std::log2(1.0 + rank[a]);
              const double gc = 1.0 / std::log2(1.0 + rank[c]);
              const double Ga = std::pow(2.0, psi[a]) - 1.0;
              const double Gc = std::pow(2.0, psi[c]) - 1.0;
              double w = 1.0;
              if (lw == "dcg") w = n * std::fabs(ga - gc) * std::fabs(Ga - Gc);
              else if (lw == "constant-gain") w = n * std::fabs(ga - gc);
              else if (lw == "constant-discount") w = n * std::fabs(Ga - Gc);
              units.push_back(w * softplus(-z));
            }
          }
      } else if (kind == Kind::Pointwise) {
        for (size_t j = 0; j < n; ++j) {
          if (name == "point-mse") {
            units.push_back((s[j] - psi[j]) * (s[j] - psi[j]));
          } else {
            const double y = std::min(1.0, std::max(0.0, psi[j]));
            units.push_back(softplus(s[j]) - s[j] * y);
          }
        }
      } else if (name == "nce") {
        const double z = std::accumulate(psi.begin(), psi.end(), 0.0);
        const double lse = logsumexp(s);
        double u = 0;
        for (size_t j = 0; j < n; ++j) u -= psi[j] / z * (s[j] - lse);
        units.push_back(u);
      } else if (name == "dpo-pl") {
        const std::vector<int> pi = order_desc(psi);
        double u = 0;
        for (size_t p = 0; p < n; ++p) {
          std::vector<double> rest;
          for (size_t q = p; q < n; ++q) rest.push_back(s[pi[q]]);
          u -= s[pi[p]] - logsumexp(rest);
        }
        units.push_back(u);
      } else {
        ADD_FAILURE() << "reference: unknown loss " << name;
      }
    }
    const double sum = std::accumulate(units.begin(), units.end(), 0.0);
    if (kind == Kind::Listwise) {
      out.num += sum;
      out.den += 1;
    } else if (reduction == "rax") {
      out.num += sum;
      out.den += static_cast<double>(units.size());
    } else if (units.empty() && !v.pairless_lists_count) {
      // contributes nothing
    } else if (reduction == "list-sum") {
      out.num += sum;
      out.den += 1;
    } else if (reduction == "list-mean") {
      out.num += units.empty() ? 0.0 : sum / units.size();
      out.den += 1;
    } else {
      ADD_FAILURE() << "reference: unknown reduction " << reduction;
    }
  }
  return out;
}

// ------------------------------------------------------------ random data
struct Gen {
  int B = 4;
  int K = 5;
  int min_valid = 2;
  bool scatter = true;        // real candidates anywhere in the row, not only first
  bool unit_rewards = false;  // rewards in (0,1) (for label_transform: none)
  bool sft = true;            // sft_index (list 1 has none)
  bool ref = true;
};

Batch random_batch(uint64_t seed, const Gen& g = {}) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unif(0.05, 0.95);
  std::uniform_int_distribution<int> count(g.min_valid, g.K);
  std::uniform_int_distribution<int> tokens(3, 40);
  Batch b;
  b.has_ref = g.ref;
  for (int i = 0; i < g.B; ++i) {
    std::vector<double> l(g.K), rf(g.K), r(g.K), tc(g.K);
    for (int k = 0; k < g.K; ++k) {
      rf[k] = -25.0 + 6.0 * normal(rng);
      l[k] = rf[k] + 4.0 * normal(rng);
      r[k] = g.unit_rewards ? unif(rng) : 1.5 * normal(rng);
      tc[k] = tokens(rng);
    }
    std::vector<int> pos(g.K);
    std::iota(pos.begin(), pos.end(), 0);
    if (g.scatter) std::shuffle(pos.begin(), pos.end(), rng);
    const int n = count(rng);
    std::vector<int> m(g.K, 0);
    for (int j = 0; j < n; ++j) m[pos[j]] = 1;
    b.logps.push_back(l);
    b.ref.push_back(rf);
    b.rewards.push_back(r);
    b.tc.push_back(tc);
    b.mask.push_back(m);
    if (g.sft) {
      const std::vector<int> v = b.valid(i);
      int64_t t = -1;
      if (i != 1 && !v.empty()) t = v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
      b.sft_index.push_back(t);
    }
  }
  return b;
}

// Rows [lo, hi) of a batch.
Batch slice(const Batch& b, int lo, int hi) {
  Batch s = b;
  auto cut = [&](auto& v) {
    if (!v.empty()) v = std::vector<typename std::decay_t<decltype(v)>::value_type>(v.begin() + lo, v.begin() + hi);
  };
  cut(s.logps);
  cut(s.ref);
  cut(s.rewards);
  cut(s.tc);
  cut(s.mask);
  cut(s.sft_index);
  cut(s.sft_nll);
  return s;
}

// ------------------------------------------------------- loss configurations
struct Config {
  std::string name;
  json opts;
  bool unit_rewards = false;
};

std::vector<Config> all_configs() {
  std::vector<Config> c;
  auto add = [&](const std::string& n, json o, bool unit = false) { c.push_back({n, std::move(o), unit}); };
  const json common[] = {json::object(),
                         {{"reduction", "list-sum"}},
                         {{"reduction", "list-mean"}},
                         {{"length_normalize", true}},
                         {{"sft_weight", 0.5}},
                         {{"length_normalize", true}, {"sft_weight", 0.3}}};
  for (const auto& o : common) add("lire", o);
  add("lire", {{"temperature", 0.7}});
  add("lire", {{"reward_transform", "raw"}});
  add("lire", {{"reward_transform", "minmax"}, {"temperature", 1.3}});
  add("lire", {{"reward_transform", "zscore"}});
  for (const char* n : {"lipo", "dpo", "slic", "dpo-pl", "point-mse", "point-sigmoid", "nce"}) {
    for (const auto& o : common) add(n, o);
    add(n, {{"label_transform", "rank-winrate"}});
    add(n, {{"label_transform", "minmax"}});
    add(n, {{"label_transform", "none"}}, true);
    add(n, {{"beta", 0.7}});
  }
  for (const char* w : {"dcg", "constant-gain", "constant-discount", "constant"}) {
    add("lipo", {{"lambda_weight", w}});
    add("lipo", {{"lambda_weight", w}, {"label_transform", "rank-winrate"}, {"reduction", "list-mean"}});
  }
  add("slic", {{"delta", 0.3}, {"beta", 1.0}});
  add("slic", {{"delta", 2.0}, {"beta", 0.5}, {"reduction", "list-sum"}});
  add("sft", json::object());
  return c;
}

std::unique_ptr<L::Loss> make_or_fail(const Config& c) {
  try {
    return L::make(c.name, c.opts);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "make(" << show(c.name, c.opts) << ") threw: " << e.what();
    return nullptr;
  }
}

Batch batch_for(const Config& c, uint64_t seed, Gen g = {}) {
  g.unit_rewards = c.unit_rewards;
  return random_batch(seed, g);
}

}  // namespace

// ========================================================================
// Registry and options
// ========================================================================

TEST(LossRegistryProps, NamesAreExactlyTheSpecifiedOnes) {
  const std::vector<std::string> got = L::names();
  const std::set<std::string> want = {"lire", "lipo", "dpo", "dpo-pl", "slic",
                                      "point-mse", "point-sigmoid", "nce", "sft"};
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want);
  EXPECT_EQ(got.size(), want.size()) << "duplicate names";
}

TEST(LossRegistryProps, EveryNameBuildsAndHasItsKind) {
  const std::map<std::string, std::pair<std::string, bool>> want = {
      {"lire", {"listwise", false}},     {"lipo", {"pairwise", true}},
      {"dpo", {"pairwise", true}},       {"slic", {"pairwise", true}},
      {"dpo-pl", {"listwise", true}},    {"nce", {"listwise", true}},
      {"point-mse", {"pointwise", true}}, {"point-sigmoid", {"pointwise", true}},
      {"sft", {"sft", false}}};
  for (const std::string& n : L::names()) {
    SCOPED_TRACE(n);
    std::unique_ptr<L::Loss> loss;
    ASSERT_NO_THROW(loss = L::make(n));
    ASSERT_TRUE(loss);
    ASSERT_TRUE(want.count(n));
    EXPECT_EQ(loss->spec().name, n);
    EXPECT_EQ(loss->spec().kind, want.at(n).first);
    EXPECT_EQ(loss->spec().uses_reference, want.at(n).second);
  }
}

TEST(LossRegistryProps, Defaults) {
  EXPECT_DOUBLE_EQ(L::make("lipo")->options().beta, 0.05);
  for (const char* n : {"dpo", "slic", "dpo-pl", "point-mse", "point-sigmoid", "nce"})
    EXPECT_DOUBLE_EQ(L::make(n)->options().beta, 0.1) << n;
  const auto lire = L::make("lire");
  EXPECT_DOUBLE_EQ(lire->options().temperature, 2.0);
  EXPECT_EQ(lire->options().reward_transform, "softmax");
  EXPECT_EQ(lire->options().reduction, "rax");
  EXPECT_FALSE(lire->options().length_normalize);
  EXPECT_DOUBLE_EQ(lire->options().sft_weight, 0.0);
  const auto lipo = L::make("lipo");
  EXPECT_EQ(lipo->options().label_transform, "bt-winrate");
  EXPECT_EQ(lipo->options().lambda_weight, "dcg");
  EXPECT_DOUBLE_EQ(L::make("slic")->options().delta, 1.0);
}

TEST(LossRegistryProps, UnknownNameSuggestsClosest) {
  try {
    L::make("lipo-lamda");
    ADD_FAILURE() << "make(\"lipo-lamda\") did not throw";
  } catch (const lire::ConfigError& e) {
    std::string msg = e.what();
    // The suggestion must name "lipo" on its own, not just echo the bad name.
    for (size_t p; (p = msg.find("lipo-lamda")) != std::string::npos;) msg.erase(p, 10);
    EXPECT_NE(msg.find("lipo"), std::string::npos) << "message: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than lire::ConfigError: " << e.what();
  }
  EXPECT_THROW(L::make("nonsense"), lire::ConfigError);
  EXPECT_THROW(L::make(""), lire::ConfigError);
}

TEST(LossRegistryProps, UnknownKeySuggestsClosest) {
  try {
    L::make("lire", {{"temprature", 2.0}});
    ADD_FAILURE() << "unknown key did not throw";
  } catch (const lire::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("temperature"), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than lire::ConfigError: " << e.what();
  }
  try {
    L::make("lipo", {{"lambda_wieght", "dcg"}});
    ADD_FAILURE() << "unknown key did not throw";
  } catch (const lire::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lambda_weight"), std::string::npos) << e.what();
  }
}

TEST(LossRegistryProps, KeysOfAnotherLossAreRejected) {
  // "Reads the loss: section (name and the keys of that loss; others are errors)."
  EXPECT_THROW(L::make("dpo", {{"temperature", 2.0}}), lire::ConfigError);
  EXPECT_THROW(L::make("lire", {{"beta", 0.1}}), lire::ConfigError);
  EXPECT_THROW(L::make("dpo", {{"lambda_weight", "dcg"}}), lire::ConfigError);
  EXPECT_THROW(L::make("lipo", {{"delta", 1.0}}), lire::ConfigError);
}

TEST(LossRegistryProps, OutOfRangeAndWrongTypesThrow) {
  EXPECT_THROW(L::make("lire", {{"temperature", 0}}), lire::ConfigError);
  EXPECT_THROW(L::make("lire", {{"temperature", -1.0}}), lire::ConfigError);
  EXPECT_THROW(L::make("lipo", {{"beta", -1}}), lire::ConfigError);
  EXPECT_THROW(L::make("dpo", {{"beta", -0.5}}), lire::ConfigError);
  EXPECT_THROW(L::make("lire", {{"temperature", "hot"}}), lire::ConfigError);
  EXPECT_THROW(L::make("lire", {{"reward_transform", "bogus"}}), lire::ConfigError);
  EXPECT_THROW(L::make("lipo", {{"label_transform", "bogus"}}), lire::ConfigError);
  EXPECT_THROW(L::make("lipo", {{"lambda_weight", "bogus"}}), lire::ConfigError);
  EXPECT_THROW(L::make("dpo", {{"reduction", "bogus"}}), lire::ConfigError);
  EXPECT_THROW(L::make("dpo", {{"length_normalize", "maybe"}}), lire::ConfigError);
  // Valid settings do not throw.
  EXPECT_NO_THROW(L::make("lire", {{"temperature", 0.5}, {"reward_transform", "zscore"}}));
  EXPECT_NO_THROW(L::make("lipo", {{"beta", 0.3}, {"lambda_weight", "constant-gain"},
                                   {"label_transform", "rank-winrate"}, {"reduction", "list-mean"}}));
}

// ========================================================================
// The specification, value by value, on random ragged batches
// ========================================================================

TEST(LossProperties, EveryConfigMatchesSpecFormula) {
  for (const Config& c : all_configs()) {
    SCOPED_TRACE(show(c.name, c.opts));
    auto loss = make_or_fail(c);
    if (!loss) continue;
    for (uint64_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE("seed " + std::to_string(seed));
      const Batch b = batch_for(c, seed);
      const Eval e = run(*loss, b);
      const RefOut want = reference(c.name, c.opts, b);
      // zscore uses the population std (docs/losses.md); the sample std differs.
      EXPECT_TRUE(near(e.loss, want.loss()));
      EXPECT_TRUE(near(scalar(e.out.denominator), want.den)) << "denominator";
      EXPECT_TRUE(near(scalar(e.out.numerator), want.num)) << "numerator";
      if (c.name != "sft") {
        if (want.sft_w > 0) {
          EXPECT_TRUE(near(scalar(e.out.sft_denominator), want.sft_den)) << "sft_denominator";
          EXPECT_TRUE(near(scalar(e.out.sft_numerator), want.sft_num)) << "sft_numerator";
        }
        EXPECT_DOUBLE_EQ(e.out.sft_weight, want.sft_w);
      }
      EXPECT_TRUE(consistent(e.out));
      EXPECT_TRUE(metrics_finite(e.out));
      EXPECT_EQ(e.out.loss.scalar_type(), kF64);
      EXPECT_EQ(e.out.loss.dim(), 0);
    }
  }
}

TEST(LossProperties, UndefinedRefLogpsMeansZero) {
  for (const std::string& n : L::names()) {
    SCOPED_TRACE(n);
    auto loss = L::make(n);
    Batch b = random_batch(11);
    Batch z = b;
    for (auto& row : z.ref) std::fill(row.begin(), row.end(), 0.0);
    b.has_ref = false;
    const Eval e1 = run(*loss, b), e0 = run(*loss, z);
    EXPECT_TRUE(near(e1.loss, e0.loss));
    EXPECT_TRUE(close(e1.grad, e0.grad));
    EXPECT_TRUE(near(e1.loss, reference(n, json::object(), b).loss()));
  }
}

// ========================================================================
// Identities from the papers
// ========================================================================

TEST(LossProperties, LipoConstantWeightEqualsDpo) {
  for (uint64_t seed : {21u, 22u, 23u, 24u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Gen g;
    g.B = 5;
    g.K = 6;
    g.min_valid = 1;
    Batch b = random_batch(seed, g);
    // Junk in the padding.
    for (int i = 0; i < b.B(); ++i)
      for (int k = 0; k < b.K(); ++k)
        if (!b.mask[i][k]) b.logps[i][k] = kNaN, b.ref[i][k] = 1e9, b.rewards[i][k] = -1e9;
    for (const json& extra : {json::object(), json{{"label_transform", "rank-winrate"}},
                              json{{"reduction", "list-mean"}}, json{{"reduction", "list-sum"}},
                              json{{"length_normalize", true}}}) {
      SCOPED_TRACE(extra.dump());
      for (double beta : {0.05, 0.1, 0.8}) {
        json lo = extra, dop = extra;
        lo["lambda_weight"] = "constant";
        lo["beta"] = beta;
        dop["beta"] = beta;
        const Eval a = run(*L::make("lipo", lo), b);
        const Eval d = run(*L::make("dpo", dop), b);
        EXPECT_TRUE(near(a.loss, d.loss, 1e-12, 1e-14)) << "beta " << beta;
        EXPECT_TRUE(close(a.grad, d.grad, 1e-12, 1e-14)) << "beta " << beta;
      }
    }
    // Default beta of lipo is 0.05.
    const Eval a = run(*L::make("lipo", {{"lambda_weight", "constant"}}), b);
    const Eval d = run(*L::make("dpo", {{"beta", 0.05}}), b);
    EXPECT_TRUE(near(a.loss, d.loss, 1e-12, 1e-14));
  }
}

TEST(LossProperties, DpoWithTwoCandidatesIsDpoBt) {
  std::mt19937_64 rng(31);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int B = 6;
  Batch b;
  for (int i = 0; i < B; ++i) {
    b.logps.push_back({-30 + 5 * normal(rng), -30 + 5 * normal(rng)});
    b.ref.push_back({-30 + 5 * normal(rng), -30 + 5 * normal(rng)});
    b.rewards.push_back({normal(rng), normal(rng)});
    b.tc.push_back({10, 12});
    b.mask.push_back({1, 1});
  }
  for (double beta : {0.1, 0.5}) {
    SCOPED_TRACE("beta " + std::to_string(beta));
    const Eval e = run(*L::make("dpo", {{"beta", beta}}), b);
    double want = 0;
    Mat g(B, std::vector<double>(2, 0.0));
    for (int i = 0; i < B; ++i) {
      const int w = b.rewards[i][0] > b.rewards[i][1] ? 0 : 1, l = 1 - w;
      const double z =
          beta * ((b.logps[i][w] - b.ref[i][w]) - (b.logps[i][l] - b.ref[i][l]));
      want += -std::log(sigmoid(z)) / B;
      // d/dz -log sigmoid(z) = -sigmoid(-z)
      g[i][w] = -beta * sigmoid(-z) / B;
      g[i][l] = beta * sigmoid(-z) / B;
    }
    EXPECT_TRUE(near(e.loss, want, 1e-12, 1e-14));
    EXPECT_TRUE(close(e.grad, to_tensor(g), 1e-10, 1e-14));
  }
}

TEST(LossProperties, LireTwoCandidateGradientIsEq9) {
  std::mt19937_64 rng(41);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (double T : {0.5, 1.0, 2.0, 3.0})
    for (const char* rt : {"raw", "softmax"}) {
      SCOPED_TRACE(std::string(rt) + " T=" + std::to_string(T));
      const int B = 3;
      Batch b;
      for (int i = 0; i < B; ++i) {
        // Realistic sequence log-probs: p = exp(logp) underflows, so work in log space.
        b.logps.push_back({-200 + 2 * normal(rng), -200 + 2 * normal(rng)});
        b.ref.push_back({0, 0});
        b.rewards.push_back({2 * normal(rng), 2 * normal(rng)});
        b.tc.push_back({50, 60});
        b.mask.push_back({1, 1});
      }
      const Eval e = run(*L::make("lire", {{"temperature", T}, {"reward_transform", rt}}), b);
      Mat g(B, std::vector<double>(2, 0.0));
      double want = 0;
      for (int i = 0; i < B; ++i) {
        double R1 = b.rewards[i][0], R2 = b.rewards[i][1];
        if (std::string(rt) == "softmax") {
          const double z = std::exp(R1) + std::exp(R2);
          R1 = std::exp(R1) / z;
          R2 = std::exp(R2) / z;
        }
        // p^(1/T) = exp(logp / T); P~ = p1' p2' / (p1' + p2')^2 (R1 - R2)
        const double a = b.logps[i][0] / T, c = b.logps[i][1] / T;
        const double m = std::max(a, c);
        const double q1 = std::exp(a - m), q2 = std::exp(c - m);
        const double Ptilde = q1 * q2 / ((q1 + q2) * (q1 + q2)) * (R1 - R2);
        g[i][0] = -(1.0 / T) * Ptilde / B;
        g[i][1] = -g[i][0];
        want += -(q1 * R1 + q2 * R2) / (q1 + q2) / B;
      }
      EXPECT_TRUE(near(e.loss, want, 1e-12, 1e-14));
      EXPECT_TRUE(close(e.grad, to_tensor(g), 1e-9, 1e-15));
    }
}

TEST(LossProperties, DpoPlIsPlackettLuceLikelihood) {
  std::mt19937_64 rng(51);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (const char* lt : {"bt-winrate", "rank-winrate", "minmax"}) {
    SCOPED_TRACE(lt);
    const int B = 4, K = 5;
    Batch b;
    for (int i = 0; i < B; ++i) {
      std::vector<double> l(K), r(K), rf(K), tc(K, 7);
      for (int k = 0; k < K; ++k) {
        rf[k] = -20 + 3 * normal(rng);
        l[k] = rf[k] + 3 * normal(rng);
        r[k] = normal(rng);
      }
      std::vector<int> m(K, 1);
      if (i == 1) m[2] = 0, l[2] = kNaN;  // one padded slot in the middle
      if (i == 2) m[4] = 0, m[0] = 0, r[4] = 1e9;
      b.logps.push_back(l);
      b.ref.push_back(rf);
      b.rewards.push_back(r);
      b.tc.push_back(tc);
      b.mask.push_back(m);
    }
    const double beta = 0.7;
    const Eval e = run(*L::make("dpo-pl", {{"beta", beta}, {"label_transform", lt}}), b);
    double want = 0;
    for (int i = 0; i < B; ++i) {
      // pi: valid candidates sorted by reward descending (every label transform
      // here is increasing in the reward, and the rewards are distinct).
      std::vector<int> pi = b.valid(i);
      std::sort(pi.begin(), pi.end(), [&](int x, int y) { return b.rewards[i][x] > b.rewards[i][y]; });
      double likelihood = 1.0;
      for (size_t p = 0; p < pi.size(); ++p) {
        double denom = 0;
        for (size_t q = p; q < pi.size(); ++q)
          denom += std::exp(beta * (b.logps[i][pi[q]] - b.ref[i][pi[q]]));
        likelihood *= std::exp(beta * (b.logps[i][pi[p]] - b.ref[i][pi[p]])) / denom;
      }
      want += -std::log(likelihood) / B;
    }
    EXPECT_TRUE(near(e.loss, want, 1e-10, 1e-14));
  }
}

// ========================================================================
// Gradients: central finite differences, every loss, every variant
// ========================================================================

TEST(LossProperties, GradientsMatchFiniteDifferences) {
  for (const Config& c : all_configs()) {
    SCOPED_TRACE(show(c.name, c.opts));
    auto loss = make_or_fail(c);
    if (!loss) continue;
    for (uint64_t seed : {61u, 62u}) {
      SCOPED_TRACE("seed " + std::to_string(seed));
      const Batch b = batch_for(c, seed);
      const Eval e = run(*loss, b);
      const Tensor fd = fd_grad(*loss, b);
      EXPECT_TRUE(close(e.grad, fd, 1e-6, 1e-8));
    }
  }
}

TEST(LossProperties, EveryRegisteredNameHasGradientCoverage) {
  std::set<std::string> covered;
  for (const Config& c : all_configs()) covered.insert(c.name);
  for (const std::string& n : L::names()) EXPECT_TRUE(covered.count(n)) << n;
}

// ========================================================================
// Invariances
// ========================================================================

TEST(LossProperties, PermutingCandidatesChangesNothing) {
  for (const Config& c : all_configs()) {
    SCOPED_TRACE(show(c.name, c.opts));
    auto loss = make_or_fail(c);
    if (!loss) continue;
    for (uint64_t seed : {71u, 72u}) {
      const Batch b = batch_for(c, seed);
      std::mt19937_64 rng(seed * 7 + 1);
      Batch p = b;
      std::vector<std::vector<int>> perm(b.B());
      for (int i = 0; i < b.B(); ++i) {
        perm[i].resize(b.K());
        std::iota(perm[i].begin(), perm[i].end(), 0);
        std::shuffle(perm[i].begin(), perm[i].end(), rng);
        std::vector<int> inv(b.K());
        for (int j = 0; j < b.K(); ++j) {
          const int k = perm[i][j];  // new position j holds old candidate k
          inv[k] = j;
          p.logps[i][j] = b.logps[i][k];
          p.ref[i][j] = b.ref[i][k];
          p.rewards[i][j] = b.rewards[i][k];
          p.tc[i][j] = b.tc[i][k];
          p.mask[i][j] = b.mask[i][k];
        }
        if (!b.sft_index.empty() && b.sft_index[i] >= 0) p.sft_index[i] = inv[b.sft_index[i]];
      }
      const Eval e0 = run(*loss, b), e1 = run(*loss, p);
      EXPECT_TRUE(near(e1.loss, e0.loss, 1e-12, 1e-14)) << "seed " << seed;
      EXPECT_TRUE(near(scalar(e1.out.denominator), scalar(e0.out.denominator)));
      Mat g0(b.B(), std::vector<double>(b.K()));
      auto acc = e0.grad.accessor<double, 2>();
      for (int i = 0; i < b.B(); ++i)
        for (int j = 0; j < b.K(); ++j) g0[i][j] = acc[i][perm[i][j]];
      EXPECT_TRUE(close(e1.grad, to_tensor(g0), 1e-10, 1e-14)) << "seed " << seed;
      for (const auto& kv : e0.out.metrics) {
        ASSERT_TRUE(e1.out.metrics.count(kv.first));
        EXPECT_TRUE(near(e1.out.metrics.at(kv.first).value(), kv.second.value(), 1e-10, 1e-12))
            << "metric " << kv.first;
      }
    }
  }
}

TEST(LossProperties, MaskedPaddingChangesNothing) {
  for (const Config& c : all_configs()) {
    SCOPED_TRACE(show(c.name, c.opts));
    auto loss = make_or_fail(c);
    if (!loss) continue;
    for (uint64_t seed : {81u, 82u}) {
      Gen g;
      g.scatter = false;
      const Batch b = batch_for(c, seed, g);
      const int K = b.K(), P = 3;
      Batch p = b;
      const double junk_l[P] = {kNaN, 1e9, -1e9};
      const double junk_r[P] = {1e9, kNaN, -kInf};
      for (int i = 0; i < b.B(); ++i)
        for (int j = 0; j < P; ++j) {
          p.logps[i].push_back(junk_l[j]);
          p.ref[i].push_back(junk_l[(j + 1) % P]);
          p.rewards[i].push_back(junk_r[j]);
          p.tc[i].push_back(j == 0 ? 0.0 : kNaN);
          p.mask[i].push_back(0);
        }
      // Also an extra, fully masked list of junk.
      p.logps.push_back(std::vector<double>(K + P, kNaN));
      p.ref.push_back(std::vector<double>(K + P, 1e9));
      p.rewards.push_back(std::vector<double>(K + P, kInf));
      p.tc.push_back(std::vector<double>(K + P, 0.0));
      p.mask.push_back(std::vector<int>(K + P, 0));
      if (!p.sft_index.empty()) p.sft_index.push_back(-1);

      const Eval e0 = run(*loss, b), e1 = run(*loss, p);
      EXPECT_TRUE(near(e1.loss, e0.loss, 1e-12, 1e-14)) << "seed " << seed;
      EXPECT_TRUE(near(scalar(e1.out.denominator), scalar(e0.out.denominator)));
      using torch::indexing::Slice;
      EXPECT_TRUE(close(e1.grad.index({Slice(0, b.B()), Slice(0, K)}), e0.grad, 1e-12, 1e-14));
      EXPECT_TRUE(all_zero(e1.grad.index({Slice(), Slice(K, K + P)}))) << "padding columns";
      EXPECT_TRUE(all_zero(e1.grad.index({b.B()}))) << "masked list";
      EXPECT_TRUE(metrics_finite(e1.out));
      for (const auto& kv : e0.out.metrics) {
        ASSERT_TRUE(e1.out.metrics.count(kv.first));
        EXPECT_TRUE(near(e1.out.metrics.at(kv.first).value(), kv.second.value(), 1e-10, 1e-12))
            << "metric " << kv.first;
      }
    }
  }
}

TEST(LossProperties, LireInvariantToRewardShiftPerList) {
  for (const json& o : {json::object(), json{{"temperature", 0.8}}, json{{"length_normalize", true}}}) {
    SCOPED_TRACE(o.dump());
    auto loss = L::make("lire", o);
    const Batch b = random_batch(91);
    Batch s = b;
    const double shift[] = {3.0, -50.0, 100.0, 0.25};
    for (int i = 0; i < b.B(); ++i)
      for (double& r : s.rewards[i]) r += shift[i % 4];
    const Eval e0 = run(*loss, b), e1 = run(*loss, s);
    EXPECT_TRUE(near(e1.loss, e0.loss, 1e-10, 1e-14));
    EXPECT_TRUE(close(e1.grad, e0.grad, 1e-9, 1e-14));
  }
  // The same holds for minmax and zscore (shift-invariant transforms), not for raw.
  for (const char* rt : {"minmax", "zscore"}) {
    auto loss = L::make("lire", {{"reward_transform", rt}});
    const Batch b = random_batch(92);
    Batch s = b;
    for (auto& row : s.rewards)
      for (double& r : row) r += 7.0;
    EXPECT_TRUE(near(run(*loss, s).loss, run(*loss, b).loss, 1e-9, 1e-12)) << rt;
  }
}

TEST(LossProperties, MicroBatchSplitCombinesExactly) {
  for (const Config& c : all_configs()) {
    SCOPED_TRACE(show(c.name, c.opts));
    auto loss = make_or_fail(c);
    if (!loss) continue;
    for (uint64_t seed : {101u, 102u}) {
      Gen g;
      g.B = 6;
      g.min_valid = 1;  // lists with a single candidate too
      const Batch b = batch_for(c, seed, g);
      const Eval full = run(*loss, b);
      // Split 2 + 4 (uneven, so averaging averages would be wrong).
      Built x = build(b);
      using torch::indexing::Slice;
      L::LossInput in1 = x.in, in2 = x.in;
      auto cut = [&](L::LossInput& in, int lo, int hi) {
        in.logps = x.in.logps.index({Slice(lo, hi)});
        if (x.in.ref_logps.defined()) in.ref_logps = x.in.ref_logps.index({Slice(lo, hi)});
        in.rewards = x.in.rewards.index({Slice(lo, hi)});
        in.mask = x.in.mask.index({Slice(lo, hi)});
        if (x.in.token_counts.defined()) in.token_counts = x.in.token_counts.index({Slice(lo, hi)});
        if (x.in.sft_index.defined()) in.sft_index = x.in.sft_index.index({Slice(lo, hi)});
      };
      cut(in1, 0, 2);
      cut(in2, 2, 6);
      const L::LossOutput o1 = loss->forward(in1), o2 = loss->forward(in2);
      const Tensor comb = L::combine({o1, o2});
      EXPECT_TRUE(near(comb.item<double>(), full.loss, 1e-12, 1e-14)) << "seed " << seed;
      if (comb.requires_grad()) comb.backward();
      const Tensor g2 = x.leaf.grad().defined() ? x.leaf.grad() : torch::zeros_like(x.leaf);
      EXPECT_TRUE(close(g2, full.grad, 1e-12, 1e-14)) << "gradient through combine";
      EXPECT_TRUE(near(scalar(o1.denominator) + scalar(o2.denominator), scalar(full.out.denominator)));
      EXPECT_TRUE(near(scalar(o1.numerator) + scalar(o2.numerator), scalar(full.out.numerator), 1e-12, 1e-14));
      // Metrics are sums and counts, so they add up too.
      for (const auto& kv : full.out.metrics) {
        ASSERT_TRUE(o1.metrics.count(kv.first) && o2.metrics.count(kv.first)) << kv.first;
        EXPECT_TRUE(near(scalar(o1.metrics.at(kv.first).sum) + scalar(o2.metrics.at(kv.first).sum),
                         scalar(kv.second.sum), 1e-10, 1e-12))
            << "metric sum " << kv.first;
        EXPECT_TRUE(near(scalar(o1.metrics.at(kv.first).count) + scalar(o2.metrics.at(kv.first).count),
                         scalar(kv.second.count)))
            << "metric count " << kv.first;
      }
      // Combining a single part is the part's loss.
      EXPECT_TRUE(near(L::combine({o1}).item<double>(), o1.loss.item<double>(), 1e-14, 1e-15));
    }
  }
}

// ========================================================================
// Reductions by hand
// ========================================================================

TEST(LossProperties, PairwiseReductionsByHand) {
  // dpo, beta 1, labels given (label_transform: none), no reference.
  // List A: 3 valid candidates, distinct labels -> 3 pairs.
  // List B: 2 valid + 1 padded -> 1 pair.
  Batch b;
  b.has_ref = false;
  b.has_tc = false;
  b.logps = {{0.3, -0.4, 1.1}, {0.5, -0.2, kNaN}};
  b.rewards = {{0.9, 0.5, 0.1}, {0.2, 0.8, 0.0}};
  b.mask = {{1, 1, 1}, {1, 1, 0}};
  b.ref = {{0, 0, 0}, {0, 0, 0}};
  auto lp = [&](int i, int j, int k) { return softplus(-(b.logps[i][j] - b.logps[i][k])); };
  // A: pairs (0,1), (0,2), (1,2); B: winner is index 1: pair (1,0).
  const double a = lp(0, 0, 1) + lp(0, 0, 2) + lp(0, 1, 2);
  const double bb = lp(1, 1, 0);
  const double rax = (a + bb) / 4.0;
  const double list_mean = (a / 3.0 + bb / 1.0) / 2.0;
  const double list_sum = (a + bb) / 2.0;
  ASSERT_GT(std::fabs(rax - list_mean), 1e-3) << "test data must separate the reductions";
  const json base = {{"beta", 1.0}, {"label_transform", "none"}};
  json o = base;
  const Eval r = run(*L::make("dpo", o), b);
  EXPECT_TRUE(near(r.loss, rax, 1e-12));
  EXPECT_TRUE(near(scalar(r.out.denominator), 4.0));
  o["reduction"] = "list-mean";
  const Eval m = run(*L::make("dpo", o), b);
  EXPECT_TRUE(near(m.loss, list_mean, 1e-12));
  EXPECT_TRUE(near(scalar(m.out.denominator), 2.0));
  o["reduction"] = "list-sum";
  const Eval s = run(*L::make("dpo", o), b);
  EXPECT_TRUE(near(s.loss, list_sum, 1e-12));
  EXPECT_TRUE(near(scalar(s.out.denominator), 2.0));

  // Pointwise (point-mse): rax averages over the 5 valid items.
  double sum_a = 0, sum_b = 0;
  for (int k = 0; k < 3; ++k) sum_a += std::pow(b.logps[0][k] - b.rewards[0][k], 2);
  for (int k = 0; k < 2; ++k) sum_b += std::pow(b.logps[1][k] - b.rewards[1][k], 2);
  o = base;
  EXPECT_TRUE(near(run(*L::make("point-mse", o), b).loss, (sum_a + sum_b) / 5.0, 1e-12));
  o["reduction"] = "list-mean";
  EXPECT_TRUE(near(run(*L::make("point-mse", o), b).loss, (sum_a / 3 + sum_b / 2) / 2.0, 1e-12));
  o["reduction"] = "list-sum";
  EXPECT_TRUE(near(run(*L::make("point-mse", o), b).loss, (sum_a + sum_b) / 2.0, 1e-12));

  // Listwise losses have one unit per list: the three reductions coincide.
  for (const char* n : {"nce", "dpo-pl"}) {
    const double v = run(*L::make(n, base), b).loss;
    for (const char* red : {"list-sum", "list-mean"}) {
      json oo = base;
      oo["reduction"] = red;
      EXPECT_TRUE(near(run(*L::make(n, oo), b).loss, v, 1e-12)) << n << " " << red;
    }
  }
}

TEST(LossProperties, ListReductionWithPairlessList) {
  // A list with valid items but no valid pair (one valid candidate, or all-equal
  // labels) under list-sum / list-mean "contributes nothing to a pairwise loss":
  // not to the numerator and not to the denominator (docs/losses.md). The batch
  // is built so that the other reading (counting such lists) gives another value.
  Batch b = random_batch(111, Gen{4, 5, 2, true, false, false, true});
  b.mask[2] = {0, 0, 1, 0, 0};                          // one valid candidate
  b.rewards[3] = {0.4, 0.4, 0.4, 0.4, 0.4};             // all-equal labels
  for (const char* n : {"dpo", "lipo", "slic"})
    for (const char* red : {"list-sum", "list-mean"}) {
      const json o = {{"reduction", red}};
      const Eval e = run(*L::make(n, o), b);
      RefVariant counts, skips;
      counts.pairless_lists_count = true;
      skips.pairless_lists_count = false;
      const RefOut a = reference(n, o, b, counts), s = reference(n, o, b, skips);
      ASSERT_FALSE(near(a.loss(), s.loss())) << "the batch does not tell the two readings apart";
      EXPECT_TRUE(near(e.loss, s.loss())) << n << " " << red << ": got " << e.loss << ", want " << s.loss()
                                          << " (pairless lists not counted; counting them gives " << a.loss()
                                          << ")";
      EXPECT_TRUE(all_zero(e.grad.index({2})));
      EXPECT_TRUE(all_zero(e.grad.index({3})));
    }
}

// ========================================================================
// Degenerate input
// ========================================================================

TEST(LossProperties, LireSingleValidCandidate) {
  Batch b;
  b.has_ref = false;
  b.logps = {{kNaN, -12.0, 1e9}};
  b.rewards = {{kNaN, 0.7, -1e9}};
  b.tc = {{0, 5, 0}};
  b.mask = {{0, 1, 0}};
  b.ref = {{0, 0, 0}};
  const std::map<std::string, double> want = {
      {"softmax", -1.0}, {"raw", -0.7}, {"minmax", -0.5}, {"zscore", 0.0}};
  for (const auto& kv : want) {
    SCOPED_TRACE(kv.first);
    const Eval e = run(*L::make("lire", {{"reward_transform", kv.first}}), b);
    EXPECT_TRUE(near(e.loss, kv.second, 1e-12, 1e-14));
    EXPECT_TRUE(near(scalar(e.out.denominator), 1.0));
    EXPECT_TRUE(all_zero(e.grad));
    EXPECT_TRUE(metrics_finite(e.out));
  }
  // Among other lists it counts in B'.
  Batch two = b;
  two.logps.push_back({-3.0, -5.0, -4.0});
  two.rewards.push_back({0.1, 0.9, 0.3});
  two.tc.push_back({1, 1, 1});
  two.mask.push_back({1, 1, 1});
  two.ref.push_back({0, 0, 0});
  const json o = {{"reward_transform", "raw"}};
  const Eval e = run(*L::make("lire", o), two);
  EXPECT_TRUE(near(e.loss, reference("lire", o, two).loss(), 1e-12));
  EXPECT_TRUE(near(scalar(e.out.denominator), 2.0));
  EXPECT_TRUE(all_zero(e.grad.index({0})));
}

TEST(LossProperties, SingleValidCandidateFormsNoPair) {
  // List 0 has one valid candidate, list 1 three: pairwise losses see list 1 only.
  Batch b = random_batch(121, Gen{2, 3, 3, false, false, false, true});
  b.mask[0] = {0, 1, 0};
  b.logps[0][0] = kNaN;
  b.rewards[0][2] = 1e9;
  const Batch only = slice(b, 1, 2);
  for (const std::string& n : L::names()) {
    if (n == "sft") continue;
    SCOPED_TRACE(n);
    auto loss = L::make(n);
    const Eval e = run(*loss, b);
    // A single candidate gets no gradient from a pairwise or listwise loss (a
    // pointwise loss still scores it on its own).
    if (kind_of(n) != Kind::Pointwise) {
      EXPECT_TRUE(all_zero(e.grad.index({0})));
    }
    EXPECT_TRUE(metrics_finite(e.out));
    EXPECT_TRUE(near(e.loss, reference(n, json::object(), b).loss(), 1e-10, 1e-14));
    if (kind_of(n) == Kind::Pairwise) {
      const Eval e1 = run(*loss, only);
      EXPECT_TRUE(near(e.loss, e1.loss, 1e-12, 1e-14));
      EXPECT_TRUE(near(scalar(e.out.denominator), 3.0));
    }
  }
  // A batch whose only list has one valid candidate: pairwise loss 0, gradient 0.
  const Batch one = slice(b, 0, 1);
  for (const char* n : {"lipo", "dpo", "slic"}) {
    const Eval e = run(*L::make(n), one);
    EXPECT_EQ(e.loss, 0.0) << n;
    EXPECT_TRUE(all_zero(e.grad)) << n;
    EXPECT_TRUE(near(scalar(e.out.denominator), 0.0)) << n;
    EXPECT_TRUE(metrics_finite(e.out)) << n;
  }
}

TEST(LossProperties, AllEqualLabels) {
  Batch b = random_batch(131, Gen{3, 4, 2, true, false, true, true});
  for (auto& row : b.rewards) std::fill(row.begin(), row.end(), 0.3);
  for (const char* n : {"lipo", "dpo", "slic"})
    for (const char* lt : {"bt-winrate", "rank-winrate", "none"})
      for (const char* red : {"rax", "list-sum", "list-mean"}) {
        SCOPED_TRACE(std::string(n) + " " + lt + " " + red);
        const Eval e = run(*L::make(n, {{"label_transform", lt}, {"reduction", red}}), b);
        EXPECT_EQ(e.loss, 0.0);
        EXPECT_TRUE(all_zero(e.grad));
        EXPECT_TRUE(metrics_finite(e.out));
        if (std::string(red) == "rax") {
          EXPECT_TRUE(near(scalar(e.out.denominator), 0.0));
        }
      }
  // Every loss stays finite, with finite gradients and metrics.
  for (const std::string& n : L::names()) {
    SCOPED_TRACE(n);
    for (const json& o : n == "lire" ? std::vector<json>{json::object(), {{"reward_transform", "minmax"}},
                                                        {{"reward_transform", "zscore"}}, {{"reward_transform", "raw"}}}
                                     : std::vector<json>{json::object()}) {
      const Eval e = run(*L::make(n, o), b);
      EXPECT_TRUE(std::isfinite(e.loss)) << o.dump();
      EXPECT_TRUE(e.grad.isfinite().all().item<bool>()) << o.dump();
      EXPECT_TRUE(metrics_finite(e.out)) << o.dump();
      if (n != "sft") {
        EXPECT_TRUE(near(e.loss, reference(n, o, b).loss(), 1e-10, 1e-14)) << o.dump();
      }
    }
  }
  // lire with all-equal rewards: minmax gives 0.5 -> loss -0.5; zscore 0 -> loss 0.
  EXPECT_TRUE(near(run(*L::make("lire", {{"reward_transform", "minmax"}}), b).loss, -0.5, 1e-12));
  EXPECT_TRUE(near(run(*L::make("lire", {{"reward_transform", "zscore"}}), b).loss, 0.0, 0, 1e-14));
  EXPECT_TRUE(all_zero(run(*L::make("lire", {{"reward_transform", "zscore"}}), b).grad));
}

TEST(LossProperties, FullyMaskedBatch) {
  Batch b;
  b.logps = {{kNaN, 1e9}, {-1e9, kInf}};
  b.ref = {{1e9, kNaN}, {kNaN, -kInf}};
  b.rewards = {{kNaN, kInf}, {1e9, -1e9}};
  b.tc = {{0, 0}, {kNaN, 0}};
  b.mask = {{0, 0}, {0, 0}};
  b.sft_index = {-1, -1};
  for (const std::string& n : L::names()) {
    for (const json& o : {json::object(), json{{"sft_weight", 0.5}}}) {
      if (n == "sft" && !o.empty()) continue;
      SCOPED_TRACE(show(n, o));
      Eval e;
      ASSERT_NO_THROW(e = run(*L::make(n, o), b));
      EXPECT_EQ(e.loss, 0.0);
      EXPECT_TRUE(all_zero(e.grad));
      EXPECT_TRUE(near(scalar(e.out.denominator), 0.0));
      EXPECT_TRUE(metrics_finite(e.out));
      for (const auto& kv : e.out.metrics) EXPECT_EQ(kv.second.value(), 0.0) << kv.first;
    }
  }
}

TEST(LossProperties, EmptyBatchLossStillBackpropagates) {
  // "loss and gradient 0 when the whole batch has none": a trainer calls
  // loss.backward() unconditionally, which needs a loss connected to logps.
  Batch b = random_batch(141, Gen{2, 3, 1, false, false, false, true});
  b.mask = {{1, 0, 0}, {0, 0, 0}};  // no valid pair anywhere
  for (const char* n : {"lipo", "dpo", "slic"}) {
    Built x = build(b);
    const L::LossOutput out = L::make(n)->forward(x.in);
    EXPECT_TRUE(out.loss.requires_grad()) << n << ": loss detached from logps; backward() throws";
    if (out.loss.requires_grad()) {
      out.loss.backward();
      if (x.leaf.grad().defined()) {
        EXPECT_TRUE(all_zero(x.leaf.grad())) << n;
      }
    }
  }
}

TEST(LossProperties, NonFiniteValidEntriesThrow) {
  for (const std::string& n : L::names()) {
    auto loss = L::make(n, n == "sft" ? json::object() : json{{"sft_weight", 0.1}});
    for (double bad : {kNaN, kInf, -kInf}) {
      SCOPED_TRACE(n + " value " + std::to_string(bad));
      Batch b = random_batch(151, Gen{2, 3, 3, false, false, true, true});
      b.sft_index = {0, 1};
      Batch l = b;
      l.logps[0][0] = bad;
      EXPECT_THROW(run(*loss, l), lire::Error) << "logps";
      if (n != "sft") {
        Batch r = b;
        r.rewards[1][2] = bad;
        EXPECT_THROW(run(*loss, r), lire::Error) << "rewards";
      }
      if (loss->spec().uses_reference) {
        Batch f = b;
        f.ref[1][1] = bad;
        EXPECT_THROW(run(*loss, f), lire::Error) << "ref_logps";
      }
    }
  }
}

// ========================================================================
// SFT term
// ========================================================================

TEST(LossProperties, SftLossIsTokenMeanNll) {
  Batch b = random_batch(161);
  b.sft_index = {2, -1, 0, 4};
  for (int i = 0; i < b.B(); ++i)
    for (int k = 0; k < b.K(); ++k) b.mask[i][k] = 1;
  const Eval e = run(*L::make("sft"), b);
  const double want = (-b.logps[0][2] / b.tc[0][2] - b.logps[2][0] / b.tc[2][0] - b.logps[3][4] / b.tc[3][4]) / 3.0;
  EXPECT_TRUE(near(e.loss, want, 1e-12));
  Mat g(b.B(), std::vector<double>(b.K(), 0.0));
  g[0][2] = -1.0 / (3 * b.tc[0][2]);
  g[2][0] = -1.0 / (3 * b.tc[2][0]);
  g[3][4] = -1.0 / (3 * b.tc[3][4]);
  EXPECT_TRUE(close(e.grad, to_tensor(g), 1e-12, 1e-15));
  EXPECT_TRUE(metrics_finite(e.out));
}

TEST(LossProperties, SftWeightAddsMeanNll) {
  Batch b = random_batch(171);
  for (const std::string& n : L::names()) {
    if (n == "sft") continue;
    SCOPED_TRACE(n);
    for (const bool ln : {false, true}) {
      const double base = run(*L::make(n, {{"length_normalize", ln}}), b).loss;
      const Eval e = run(*L::make(n, {{"length_normalize", ln}, {"sft_weight", 0.25}}), b);
      double nll = 0, cnt = 0;
      for (int i = 0; i < b.B(); ++i)
        if (b.sft_index[i] >= 0) nll += -b.logps[i][b.sft_index[i]] / b.tc[i][b.sft_index[i]], cnt += 1;
      // The SFT NLL is token-mean of the raw sequence log-prob, with or without length_normalize.
      EXPECT_TRUE(near(e.loss, base + 0.25 * nll / cnt, 1e-12)) << "length_normalize " << ln;
      EXPECT_TRUE(near(scalar(e.out.sft_denominator), cnt));
      EXPECT_TRUE(e.out.metrics.count("sft_nll")) << "sft_nll metric missing";
    }
  }
}

TEST(LossProperties, SftNllGivenIsUsedAndGetsGradient) {
  Batch b = random_batch(181);
  b.sft_index = {1, -1, 0, 2};
  for (int i = 0; i < b.B(); ++i) b.mask[i] = {1, 1, 1, 1, 1};
  b.sft_nll = {1.5, 0.0, 2.25, 0.75};
  const double w = 0.4;
  for (const std::string& n : L::names()) {
    SCOPED_TRACE(n);
    if (n == "sft") {
      const Eval e = run(*L::make(n), b);
      EXPECT_TRUE(near(e.loss, (1.5 + 2.25 + 0.75) / 3, 1e-12));
      ASSERT_TRUE(e.nll_grad.defined());
      EXPECT_TRUE(close(e.nll_grad, torch::tensor({1.0 / 3, 0.0, 1.0 / 3, 1.0 / 3}, kF64), 1e-12, 1e-15));
      EXPECT_TRUE(all_zero(e.grad)) << "sft_nll given: logps do not enter";
      continue;
    }
    Batch nob = b;
    nob.sft_index.clear();
    nob.sft_nll.clear();
    const Eval base = run(*L::make(n), nob);
    const Eval e = run(*L::make(n, {{"sft_weight", w}}), b);
    EXPECT_TRUE(near(e.loss, base.loss + w * (1.5 + 2.25 + 0.75) / 3, 1e-12));
    EXPECT_TRUE(close(e.grad, base.grad, 1e-12, 1e-15)) << "logps gradient is the preference term's";
    ASSERT_TRUE(e.nll_grad.defined());
    EXPECT_TRUE(close(e.nll_grad, torch::tensor({w / 3, 0.0, w / 3, w / 3}, kF64), 1e-12, 1e-15));
  }
}

// ========================================================================
// Metrics
// ========================================================================

TEST(LossProperties, MetricsOnHandMadeList) {
  // beta 1, no reference, labels given: s = logps, psi = rewards.
  Batch b;
  b.has_ref = false;
  b.has_tc = false;
  b.logps = {{3.0, 1.0, 2.0, 0.0, kNaN}};
  b.rewards = {{0.9, 0.5, 0.1, 0.3, kNaN}};
  b.ref = {{0, 0, 0, 0, 0}};
  b.mask = {{1, 1, 1, 1, 0}};
  const json o = {{"beta", 1.0}, {"label_transform", "none"}};
  // Pairs with psi_i > psi_j: (0,1) (0,2) (0,3) (1,2) (1,3) (3,2); s agrees on 4.
  for (const char* n : {"dpo", "lipo", "point-mse", "nce", "dpo-pl", "slic", "point-sigmoid"}) {
    SCOPED_TRACE(n);
    const Eval e = run(*L::make(n, o), b);
    ASSERT_TRUE(metrics_finite(e.out));
    EXPECT_TRUE(near(e.out.metrics.at("pair_accuracy").value(), 4.0 / 6.0, 1e-12));
    // All 6 pairs of distinct labels are valid.
    EXPECT_TRUE(near(e.out.metrics.at("valid_pair_fraction").value(), 1.0, 1e-12));
    // NDCG of the order by s (0, 2, 1, 3) with gains 2^psi - 1.
    auto G = [](double p) { return std::pow(2.0, p) - 1.0; };
    auto D = [](int r) { return 1.0 / std::log2(1.0 + r); };
    const double dcg = G(0.9) * D(1) + G(0.1) * D(2) + G(0.5) * D(3) + G(0.3) * D(4);
    const double ideal = G(0.9) * D(1) + G(0.5) * D(2) + G(0.3) * D(3) + G(0.1) * D(4);
    EXPECT_TRUE(near(e.out.metrics.at("ndcg").value(), dcg / ideal, 1e-12));
    // Margin between the best-labelled candidate (s=3) and the rest (1, 2, 0): mean 2.
    EXPECT_TRUE(near(e.out.metrics.at("margin").value(), 2.0, 1e-12));
  }
  // Scores ordered like the labels: accuracy 1, NDCG 1.
  Batch o2 = b;
  o2.logps = {{4.0, 2.0, 0.5, 1.0, kNaN}};
  const Eval e = run(*L::make("lipo", o), o2);
  EXPECT_TRUE(near(e.out.metrics.at("pair_accuracy").value(), 1.0, 1e-12));
  EXPECT_TRUE(near(e.out.metrics.at("ndcg").value(), 1.0, 1e-12));
}

TEST(LossProperties, MetricsWithTies) {
  Batch b;
  b.has_ref = false;
  b.has_tc = false;
  b.logps = {{1.0, 2.0, 0.0}};
  b.rewards = {{0.5, 0.5, 0.2}};
  b.ref = {{0, 0, 0}};
  b.mask = {{1, 1, 1}};
  const Eval e = run(*L::make("dpo", {{"beta", 1.0}, {"label_transform", "none"}}), b);
  ASSERT_TRUE(metrics_finite(e.out));
  // Three candidate pairs, the tied one is not a pair: 2/3 valid, both correct.
  EXPECT_TRUE(near(e.out.metrics.at("valid_pair_fraction").value(), 2.0 / 3.0, 1e-12));
  EXPECT_TRUE(near(e.out.metrics.at("pair_accuracy").value(), 1.0, 1e-12));
  EXPECT_TRUE(near(scalar(e.out.denominator), 2.0));
}

TEST(LossProperties, LireMetricsUseLogpsAndRewards) {
  Batch b;
  b.has_ref = false;
  b.logps = {{-10.0, -30.0, -20.0}};
  b.rewards = {{2.0, -1.0, 0.5}};
  b.tc = {{5, 5, 5}};
  b.ref = {{0, 0, 0}};
  b.mask = {{1, 1, 1}};
  const Eval e = run(*L::make("lire"), b);
  ASSERT_TRUE(metrics_finite(e.out));
  EXPECT_TRUE(near(e.out.metrics.at("pair_accuracy").value(), 1.0, 1e-12));
  EXPECT_TRUE(near(e.out.metrics.at("ndcg").value(), 1.0, 1e-12));
  b.logps = {{-20.0, -10.0, -30.0}};  // only the pair (best, middle) is ordered right
  const Eval f = run(*L::make("lire"), b);
  EXPECT_TRUE(near(f.out.metrics.at("pair_accuracy").value(), 1.0 / 3.0, 1e-12));
  EXPECT_LT(f.out.metrics.at("ndcg").value(), 1.0);
}

// ========================================================================
// Dtypes
// ========================================================================

TEST(LossProperties, Float32MatchesFloat64) {
  const Batch b = random_batch(191);
  for (const std::string& n : L::names()) {
    SCOPED_TRACE(n);
    auto loss = L::make(n);
    const Eval e64 = run(*loss, b);
    const Eval e32 = run(*loss, b, torch::kFloat32);
    EXPECT_EQ(e32.out.loss.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(near(e32.loss, e64.loss, 1e-4, 1e-6));
    EXPECT_TRUE(close(e32.grad, e64.grad, 1e-3, 1e-6));
  }
}
