/*
 * load: host pressure from PSI (/proc/pressure), load average where PSI is missing.
 */
#include "aheadfs/load.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool load_parse_psi(const char *text, double *share)
{
	const char *p = text ? strstr(text, "some avg10=") : NULL;
	char *end;
	double v;

	if (!p)
		return false;
	v = g_ascii_strtod(p + strlen("some avg10="), &end);
	if (end == p + strlen("some avg10="))
		return false;
	*share = CLAMP(v / 100.0, 0.0, 1.0);
	return true;
}

double load_host_pressure(void)
{
	static const char *const files[] = {"/proc/pressure/cpu", "/proc/pressure/io",
					    "/proc/pressure/memory"};
	double worst = 0, share, avg[1];
	bool any = false;

	for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *text = NULL;

		if (g_file_get_contents(files[i], &text, NULL, NULL) &&
		    load_parse_psi(text, &share)) {
			worst = MAX(worst, share);
			any = true;
		}
	}
	if (any)
		return worst;
	if (getloadavg(avg, 1) == 1) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		return CLAMP(avg[0] / (double)(cpus > 0 ? cpus : 1), 0.0, 1.0);
	}
	return 0;
}
