// Helpers shared by every TOML loader (targets, rasad.toml, fingerprints):
// typed getters that report "FILE:LINE: message". Defined in targets.cc.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "probe/core/status.h"

namespace rasad {
namespace cfgutil {

Status Fail(const std::string& file, int line, const std::string& msg);
int LineOf(const toml::node& n);
std::string Quote(std::string_view s);
Status ReadWholeFile(const std::string& path, std::string* out);
Status ParseTomlFile(const std::string& path, toml::table* out);
// Unknown keys are errors, with a "did you mean" hint.
Status CheckKeys(const std::string& file, const toml::table& t, const std::string& prefix,
                 const std::vector<std::string>& allowed);
Status GetString(const std::string& file, const toml::table& t, const std::string& prefix,
                 const std::string& key, std::string* out, bool* found, int* line);
Status GetBool(const std::string& file, const toml::table& t, const std::string& prefix,
               const std::string& key, bool* out, bool* found, int* line);
Status GetInt(const std::string& file, const toml::table& t, const std::string& prefix,
              const std::string& key, int64_t min, int64_t max, int64_t* out, bool* found,
              int* line);
Status GetStringArray(const std::string& file, const toml::table& t, const std::string& prefix,
                      const std::string& key, std::vector<std::string>* out,
                      std::vector<int>* lines, bool* found, int* line);
Status GetIntArray(const std::string& file, const toml::table& t, const std::string& prefix,
                   const std::string& key, std::vector<int64_t>* out, std::vector<int>* lines,
                   bool* found, int* line);
bool IsIdentifier(std::string_view s);
bool IsIpLiteral(std::string_view s);
bool IsHostname(std::string_view s);
const std::set<std::string>& CategoryCodes();
bool IsCategoryCode(const std::string& code);

}  // namespace cfgutil
}  // namespace rasad
