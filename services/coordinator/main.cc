#include "services/coordinator/coordinator_main.h"

int main(int argc, char** argv) { return fedrx::coordinator::Main(argc, argv); }
