// Importer for Citizen Lab test lists (github.com/citizenlab/test-lists,
// lists/<cc>.csv): url,category_code,category_description,date_added,source,notes.
// The CLI exposes it as `rasad targets import citizenlab FILE.csv` (docs/TARGETS.md).
#pragma once

#include <string>

#include "probe/config/targets.h"
#include "probe/core/status.h"

namespace rasad {

// Reads a Citizen Lab test list and builds a target named `name` with one
// endpoint per URL: steps "http", tls from the scheme, the port from the URL
// or the scheme's default, the path (and query) from the URL, method GET.
// Endpoint names are the host, made unique with "-2", "-3", ... A URL listed
// twice (same scheme, host, port and path) becomes one endpoint.
//
// The target gets version = today's UTC date (YYYY-MM-DD), title
// "Citizen Lab list <file basename>", and category = the rows' category code
// when all rows share one (else empty). Each endpoint's line is its CSV line.
//
// Errors: Status::IoError("FILE: cannot open: ...") when unreadable;
// Status::Invalid("FILE:LINE: ...") for a bad header, a wrong column count,
// bad quoting or a bad URL (LINE is where the CSV record starts), and
// Status::Invalid for a `name` not matching [a-z0-9_-]+. Quoted fields may
// contain commas, newlines and "" escapes.
Status ImportCitizenLab(const std::string& csv_path, const std::string& name, Target* out);

}  // namespace rasad
