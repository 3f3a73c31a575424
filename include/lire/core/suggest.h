// "Did you mean" suggestions for misspelt keys and names.
#pragma once

#include <string>
#include <vector>

namespace lire {

// Levenshtein edit distance between two strings.
std::size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word` when it is close enough to be a plausible
// typo (distance at most max(2, |word|/3)), else an empty string.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// "; did you mean X?" when closest_match finds one, else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// "a, b, c" (sorted copy of the names).
std::string join_sorted(std::vector<std::string> names, const std::string& separator = ", ");

}  // namespace lire
