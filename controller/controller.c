#include "log.h"
int main(void);
int
main(void)
{
	log_init("x", false);
	return 0;
}
