#include "gateway/gateway_main.h"

int main(int argc, char** argv) { return fedrx::gateway::Main(argc, argv); }
