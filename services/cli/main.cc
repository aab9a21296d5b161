#include "services/cli/cli.h"

int main(int argc, char** argv) { return fedrx::cli::Main(argc, argv); }
