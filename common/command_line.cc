#include "common/command_line.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/flag_types.h"

namespace txbuf {
namespace {

// Abseil's name of a flag written `name`: dashes become underscores.
std::string AbslName(absl::string_view name) {
  return absl::StrReplaceAll(name, {{"-", "_"}});
}

// The flag an alias names, or nullptr.
absl::CommandLineFlag* FindAliased(absl::string_view name,
                                   const FlagAliases& aliases) {
  const std::string key = AbslName(name);
  for (const auto& [alias, target] : aliases) {
    if (AbslName(alias) == key)
      return absl::FindCommandLineFlag(AbslName(target));
  }
  return nullptr;
}

// What the help calls a flag's value, from its type.
std::string ValueName(const absl::CommandLineFlag& flag,
                      const std::map<std::string, std::string>& value_names) {
  if (auto it = value_names.find(DisplayName(flag.Name()));
      it != value_names.end()) {
    return it->second;
  }
  if (flag.IsOfType<ByteSize>()) return "BYTES";
  if (flag.IsOfType<Seconds>()) return "SECS";
  if (flag.IsOfType<HostPort>()) return "HOST:PORT";
  if (flag.IsOfType<ServiceAddress>()) return "HOST[:PORT]";
  if (flag.IsOfType<EngineKind>()) return "ENGINE";
  if (flag.IsOfType<int>() || flag.IsOfType<int64_t>() ||
      flag.IsOfType<uint32_t>() || flag.IsOfType<uint64_t>()) {
    return "N";
  }
  if (flag.IsOfType<double>()) return "X";
  if (flag.IsOfType<std::vector<std::string>>()) return "LIST";
  return "VALUE";
}

// Appends `text` to `out`, each of its lines wrapped at 79 columns and
// indented by `indent` spaces.
void AppendWrapped(absl::string_view text, int indent, std::string& out) {
  constexpr size_t kWidth = 79;
  const std::string pad(indent, ' ');
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::string cur = pad;
    for (absl::string_view word :
         absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      if (cur.size() > pad.size() && cur.size() + 1 + word.size() > kWidth) {
        absl::StrAppend(&out, cur, "\n");
        cur = pad;
      }
      absl::StrAppend(&cur, cur.size() > pad.size() ? " " : "", word);
    }
    absl::StrAppend(&out, cur, "\n");
  }
}

}  // namespace

std::string DisplayName(absl::string_view flag_name) {
  return absl::StrReplaceAll(flag_name, {{"_", "-"}});
}

const absl::CommandLineFlag* FindFlag(absl::string_view name) {
  return absl::FindCommandLineFlag(AbslName(name));
}

absl::StatusOr<CommandLine> SplitCommandLine(
    const std::vector<std::string>& args, const FlagAliases& aliases) {
  CommandLine out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      continue;
    }
    if (arg == "--version") {
      out.version = true;
      continue;
    }
    if (arg == "--") {
      out.positional.insert(out.positional.end(), args.begin() + i + 1,
                            args.end());
      break;
    }
    absl::string_view body = arg;
    if (!absl::ConsumePrefix(&body, "-") || body.empty()) {
      out.positional.push_back(arg);
      continue;
    }
    absl::ConsumePrefix(&body, "-");
    const size_t eq = body.find('=');
    const bool has_value = eq != absl::string_view::npos;
    const absl::string_view name = body.substr(0, eq);
    const std::string spelled =
        arg.substr(0, arg.size() - body.size() + name.size());
    // Known before anything else: an unknown flag must not take the next
    // argument as its value.
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(AbslName(name));
    if (flag == nullptr) flag = FindAliased(name, aliases);
    bool negated = false;
    if (flag == nullptr) {
      absl::string_view positive = name;
      if (absl::ConsumePrefix(&positive, "no")) {
        if (!absl::ConsumePrefix(&positive, "-")) {
          absl::ConsumePrefix(&positive, "_");
        }
        absl::CommandLineFlag* f =
            absl::FindCommandLineFlag(AbslName(positive));
        if (f == nullptr) f = FindAliased(positive, aliases);
        if (f != nullptr && f->IsOfType<bool>()) {
          flag = f;
          negated = true;
        }
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", spelled));
    }
    GivenFlag given{spelled, std::string(flag->Name()), ""};
    if (flag->IsOfType<bool>()) {
      if (negated && has_value) {
        return absl::InvalidArgumentError(
            absl::StrCat(spelled, " takes no value"));
      }
      if (has_value && body.size() == eq + 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(spelled, "= needs true or false"));
      }
      given.value = has_value ? std::string(body.substr(eq + 1))
                              : (negated ? "false" : "true");
    } else if (has_value) {
      given.value = std::string(body.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      given.value = args[++i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(spelled, " needs a value"));
    }
    out.flags.push_back(std::move(given));
  }
  return out;
}

absl::Status SetFlagFromText(absl::string_view name, absl::string_view text,
                             absl::string_view spelled) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(AbslName(name));
  const std::string as_written = spelled.empty()
                                     ? absl::StrCat("--", DisplayName(name))
                                     : std::string(spelled);
  if (flag == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown flag ", as_written));
  }
  std::string error;
  if (flag->ParseFrom(text, &error)) return absl::OkStatus();
  // Abseil's error is "Illegal value 'TEXT' specified for flag 'NAME'",
  // then "; " and the parser's reason if it gave one.
  const std::string prefix = absl::StrCat(
      "Illegal value '", text, "' specified for flag '", flag->Name(), "'");
  absl::string_view reason = error;
  if (!absl::ConsumePrefix(&reason, prefix)) reason = error;
  absl::ConsumePrefix(&reason, "; ");
  return absl::InvalidArgumentError(
      absl::StrCat("bad value for ", as_written, ": '", text, "'",
                   reason.empty() ? "" : absl::StrCat(" (", reason, ")")));
}

absl::Status ApplyCommandLine(const CommandLine& line) {
  for (const GivenFlag& f : line.flags) {
    if (absl::Status s = SetFlagFromText(f.name, f.value, f.spelled); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

void ResetFlagsToDefaults(absl::string_view defined_in) {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::EndsWith(flag->Filename(), defined_in)) continue;
    std::string error;
    // A default reads back as itself (Abseil checks that in debug builds).
    flag->ParseFrom(flag->DefaultValue(), &error);
  }
}

std::string FlagsHelp(absl::string_view defined_in, const FlagAliases& aliases,
                      const std::map<std::string, std::string>& value_names) {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), defined_in)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return DisplayName(a->Name()) < DisplayName(b->Name());
            });
  std::string out(absl::ProgramUsageMessage());
  if (!absl::EndsWith(out, "\n")) out += "\n";
  out += "\nFlags:\n";
  for (const absl::CommandLineFlag* f : flags) {
    const bool is_bool = f->IsOfType<bool>();
    const std::string value =
        is_bool ? "" : absl::StrCat("=", ValueName(*f, value_names));
    std::vector<std::string> names = {
        absl::StrCat("--", DisplayName(f->Name()), value)};
    for (const auto& [alias, target] : aliases) {
      if (AbslName(target) == f->Name()) {
        names.push_back(absl::StrCat("--", alias, value));
      }
    }
    std::string line = absl::StrCat("  ", absl::StrJoin(names, ", "));
    const std::string def = f->DefaultValue();
    if (is_bool ? def == "true" : !def.empty()) {
      absl::StrAppend(&line, "  (default ", def, ")");
    }
    absl::StrAppend(&out, line, "\n");
    AppendWrapped(f->Help(), 6, out);
  }
  out +=
      "  --version\n"
      "      print the version and exit\n"
      "  -h, --help\n"
      "      this text\n";
  return out;
}

}  // namespace txbuf
