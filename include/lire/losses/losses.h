// The loss implementations behind the registry (registry.h is the public entry point).
#pragma once

#include <memory>

#include "lire/losses/registry.h"

namespace lire::losses {

// Builds the loss named by options.name; options must come from the option
// readers (loss_options.h), which validate them.
std::unique_ptr<Loss> build_loss(const LossOptions& options);

}  // namespace lire::losses
