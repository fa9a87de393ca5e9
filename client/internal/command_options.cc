#include "client/internal/command_options.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace txbuf::client::internal {

absl::StatusOr<CommandArgs> ParseCommandArgs(
    absl::string_view command, const CommandSyntax& syntax,
    const std::vector<std::string>& args) {
  CommandArgs out;
  auto add = [&out](char letter) {
    if (!out.Has(letter)) out.options += letter;
  };
  bool options_done = false;
  for (const std::string& arg : args) {
    if (options_done || arg == "-" || !absl::StartsWith(arg, "-")) {
      out.operands.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (absl::StartsWith(arg, "--")) {
      absl::string_view name = absl::string_view(arg).substr(2);
      bool known = false;
      for (const auto& [long_name, letter] : syntax.long_names) {
        if (long_name == name) {
          add(letter);
          known = true;
          break;
        }
      }
      if (!known) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown option '", arg, "' for ", command));
      }
      continue;
    }
    for (char letter : absl::string_view(arg).substr(1)) {
      if (syntax.letters.find(letter) == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown option '-", std::string(1, letter), "' for ", command));
      }
      add(letter);
    }
  }
  return out;
}

}  // namespace txbuf::client::internal
