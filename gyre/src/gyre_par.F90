!> @file gyre_par.F90
!> @brief Kinds, physical constants and the table of run parameters (namelist variables with defaults).
!>
!> Every namelist variable of the model lives here, NEMO style (ln_ logical, nn_ integer, rn_ real,
!> cn_ character). gyre_nml fills them from namelist_ref then namelist_cfg; all other modules only read them.
module gyre_par
   use, intrinsic :: iso_fortran_env, only: real64, int64
   use obr_host_nml, only: ln_obridge, cn_obr_name, nn_obr_freq, cn_obr_send, ln_obr_emulator, cn_obr_emu_mode, &
      &                    nn_obr_emu_freq, ln_obr_spinup, ln_obr_required, rn_obr_timeout   ! &namobridge
   implicit none
   public

   integer,  parameter :: wp = real64          !< working precision (8-byte reals everywhere, also on the wire)
   integer,  parameter :: i8 = int64           !< 8-byte integers (counters)
   integer,  parameter :: nn_hls = 2           !< halo width (2 allows the biharmonic operator with one exchange per stage)
   integer,  parameter :: jpfld = 4            !< number of prognostic fields
   integer,  parameter :: jp_ssh = 1, jp_u = 2, jp_v = 3, jp_tem = 4   !< indices of the prognostic fields in the state array
   character(len=4), parameter :: cp_fld(jpfld) = [character(len=4) :: 'ssh', 'u', 'v', 'temp']  !< field names
   integer,  parameter :: jp_maxsend = 8       !< max entries of cn_obr_send
   integer,  parameter :: jp_maxisl = 16       !< max land boxes in &nammask
   integer,  parameter :: lc = 256             !< length of path / message strings

   real(wp), parameter :: rpi = 3.141592653589793238462643383279_wp   !< pi
   real(wp), parameter :: grav = 9.81_wp       !< gravity (m s-2)
   real(wp), parameter :: rcp = 3991.86795711963_wp  !< specific heat of sea water (J kg-1 K-1), TEOS-10 cp0
   real(wp), parameter :: rday = 86400._wp     !< seconds per day

   ! ---------------- &namrun: run control ----------------
   character(len=64) :: cn_exp = 'gyre'        !< experiment name, prefix of every output file
   integer  :: nn_it000 = 1                    !< first time step (ignored with ln_rstart: taken from the restart)
   integer  :: nn_itend = 100                  !< last time step
   real(wp) :: rn_dt = 1200._wp                !< time step (s)
   logical  :: ln_rstart = .false.             !< start from a restart file
   character(len=lc) :: cn_ocerst_in = ''      !< restart file to read (with or without .nc)
   integer  :: nn_stock = 0                    !< restart frequency in steps (0: only at the end of the run)
   logical  :: ln_rst_end = .true.             !< also write a restart at nn_itend
   integer  :: nn_write = 0                    !< fields output frequency in steps (0: none)
   integer  :: nn_diag = 1                     !< diagnostics time series frequency in steps (0: none)
   integer  :: nn_print = 0                    !< print a progress line every nn_print steps (0: never)

   ! ---------------- &namdom: grid and decomposition ----------------
   integer  :: nn_nx = 128                     !< global interior points in x
   integer  :: nn_ny = 128                     !< global interior points in y
   real(wp) :: rn_dx = 15.e3_wp                !< grid spacing in x (m)
   real(wp) :: rn_dy = 15.e3_wp                !< grid spacing in y (m)
   integer  :: jpni = 0                        !< ranks in x (0: chosen by MPI_Dims_create)
   integer  :: jpnj = 0                        !< ranks in y (0: chosen by MPI_Dims_create)
   logical  :: ln_landdom = .false.            !< remove the land-only tiles of the jpni x jpnj layout (NEMO's
   !                                           !  mpp_is_ocean): run on as many ranks as there are tiles with ocean

   ! ---------------- &namphys: physical parameters (the surrogate's conditioning vector) ----------------
   real(wp) :: rn_tau0 = 0.15_wp                !< wind stress amplitude (N m-2)
   real(wp) :: rn_ahm = 50._wp                !< Laplacian lateral viscosity (m2 s-1)
   real(wp) :: rn_bhm = 2.e10_wp                  !< biharmonic lateral viscosity (m4 s-1), used with ln_dynldf_blp
   logical  :: ln_dynldf_lap = .true.          !< use the Laplacian viscosity rn_ahm
   logical  :: ln_dynldf_blp = .true.         !< use the biharmonic viscosity rn_bhm
   real(wp) :: rn_gprime = 0.03_wp             !< reduced gravity (m s-2)
   real(wp) :: rn_rdrag = 1.e-7_wp             !< linear (interfacial) drag (s-1)
   real(wp) :: rn_trelax = 30._wp              !< temperature relaxation time (days)
   real(wp) :: rn_h0 = 600._wp                 !< upper-layer rest thickness (m)
   real(wp) :: rn_hthin = 50._wp               !< outcrop guard: a layer thinner than this entrains water (m; 0: off)
   real(wp) :: rn_f0 = 7.e-5_wp                !< Coriolis parameter at mid-basin (s-1)
   real(wp) :: rn_beta = 2.e-11_wp             !< beta (m-1 s-1)
   real(wp) :: rn_rho0 = 1025._wp              !< reference density (kg m-3)
   real(wp) :: rn_aht = 100._wp                !< tracer lateral diffusivity (m2 s-1)
   real(wp) :: rn_shlat = 0._wp                !< lateral boundary condition: 0 free slip, 2 no slip
   real(wp) :: rn_apvm = 0._wp                 !< upwind bias of the potential vorticity (APVM), in grid steps (0: off)
   logical  :: ln_dynvor_een = .false.         !< energy-and-enstrophy-conserving vorticity flux (Arakawa and Lamb 1981)
   !                                           !  instead of the energy-conserving one (Sadourny 1975)
   real(wp) :: rn_tsouth = 25._wp              !< relaxation temperature at the southern wall (degC)
   real(wp) :: rn_tnorth = 5._wp               !< relaxation temperature at the northern wall (degC)

   ! ---------------- &nammask: land ----------------
   character(len=lc) :: cn_mask_file = ''      !< netCDF file with a (y,x) ocean mask, 1 ocean 0 land ('' : none)
   character(len=32) :: cn_mask_var = 'mask'   !< name of the mask variable in cn_mask_file
   real(wp) :: rn_island(4, jp_maxisl) = -1._wp  !< land boxes x1,x2,y1,y2 (km); a T point inside a box is land

   ! ---------------- &namctl: safety checks ----------------
   integer  :: nn_ctl = 1                      !< check the state for NaN / blow-up every nn_ctl steps
   real(wp) :: rn_umax = 10._wp                !< blow-up threshold on |u|, |v| (m s-1)
   real(wp) :: rn_hmin = 1._wp                 !< blow-up threshold on the layer thickness (m)
   real(wp) :: rn_tmax = 100._wp               !< blow-up threshold on |temp| (degC)
   real(wp) :: rn_cflmax = 1._wp               !< stop when the flow's CFL number (advection + gravity waves) exceeds it

   ! &namobridge (coupling to the oceanbridge worker, same group as NEMO and CROCO): the switches live in the
   ! bridge's host layer, obr_host_nml (ln_obridge, cn_obr_name, nn_obr_freq, cn_obr_send, ...), used above.

   ! ---------------- derived run quantities (set at initialisation) ----------------
   integer  :: nit000 = 1                      !< first step of this run segment
   integer  :: nitend = 100                    !< last step of this run segment
   real(wp) :: rgfac = 327._wp                !< grav / rn_gprime: layer-thickness anomaly per metre of ssh

end module gyre_par
