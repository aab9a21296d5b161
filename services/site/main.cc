#include "services/site/site_main.h"

int main(int argc, char** argv) { return fedrx::site::Main(argc, argv); }
