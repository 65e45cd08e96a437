// The `rasad helper` subcommand: its options (CLI11) and entry point, so
// probe/cli/main.cc only needs two lines:
//   auto* helper = rasad::AddHelperCommand(&app, &helper_opts);   // before parse
//   if (*helper) rc = rasad::RunHelper(helper_opts);               // after globals init
#pragma once

#include <CLI/CLI.hpp>

#include "control/helper_server.h"

namespace rasad {

CLI::App* AddHelperCommand(CLI::App* app, HelperOptions* opts);

}  // namespace rasad
