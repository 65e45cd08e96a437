// Small text encodings shared by the probe, analysis and interop, so that a
// title or a base64 body is computed the same way whatever its source.
#pragma once

#include <string>

namespace rasad {

std::string Base64Encode(const std::string& in);
// Tolerates whitespace and missing padding; false on invalid input.
bool Base64Decode(const std::string& in, std::string* out);
// The <title> of an HTML prefix, whitespace collapsed, at most 256 bytes
// (blockpages are recognised by it; titles compare across sources).
std::string HtmlTitle(const std::string& body);

}  // namespace rasad
