/*
 * ctl_heatmap: `aheadfsctl heatmap [OPTION...] MOUNTPOINT/NAME -o FILE.png`: reads the
 * image's heat file (MOUNTPOINT/.aheadfs/NAME.heat, or a copy of one named directly)
 * and draws it (heatmap.h). Exit status as for every aheadfsctl command: 0 done, 1 it
 * failed (no such heat file, a corrupt one, the PNG cannot be written), 2 bad usage.
 */
#ifndef AHEADFS_CTL_HEATMAP_H
#define AHEADFS_CTL_HEATMAP_H

int ctl_heatmap(int argc, char **argv);

#endif
