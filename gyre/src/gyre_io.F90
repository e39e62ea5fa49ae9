!> @file gyre_io.F90
!> @brief netCDF fields output (CF names and units) gathered on rank 0, and netCDF helpers.
!>
!> File <cn_exp>_fields.nc, one record every nn_write steps: dims time (unlimited), y, x; coordinates time
!> ("seconds since 2000-01-01 00:00:00", value kt*rn_dt), x, y (m); step(time); ssh, u, v, temp (time,y,x);
!> mask (y,x) 1 ocean / 0 land; the physical parameters as scalars listed in the global attribute `parameters`;
!> global attributes dt, dx, dy, h0, f0, beta, shlat, rho0, cp (J kg-1 K-1), grav (m s-2).
module gyre_io
   use netcdf
   use gyre_par
   use gyre_mpp, only: lwp, mpp_gather, ctl_stop
   use gyre_dom, only: tmask_glo, xt_glo, yt_glo
   implicit none
   private

   public :: io_init, io_write, io_close, nccheck, nc_put_params, nc_def_xy, io_param_list, global_atts

   character(len=*), parameter, public :: cp_tunits = 'seconds since 2000-01-01 00:00:00'   !< CF time units
   character(len=40), parameter, public :: cp_std(jpfld) = [character(len=40) :: 'sea_surface_height_above_geoid', &
      & 'sea_water_x_velocity', 'sea_water_y_velocity', 'sea_surface_temperature']          !< CF standard names
   character(len=8), parameter, public :: cp_units(jpfld) = [character(len=8) :: 'm', 'm s-1', 'm s-1', 'degC']  !< units
   character(len=80), parameter :: cp_long(jpfld) = [character(len=80) :: 'sea surface height', &
      & 'zonal velocity of the upper layer (C grid: east face of the T cell)', &
      & 'meridional velocity of the upper layer (C grid: north face of the T cell)', &
      & 'temperature of the upper layer']

   integer :: ncid = -1, nrec = 0, nvtime, nvstep, nvfld(jpfld)
   real(wp), allocatable :: zglo(:,:)

contains

   !> Stop (on the calling rank) on a netCDF error.
   subroutine nccheck(kerr, cd_ctx)
      integer, intent(in) :: kerr               !< netCDF status
      character(len=*), intent(in) :: cd_ctx    !< what was being done (file, variable)
      if (kerr /= NF90_NOERR) call ctl_stop('netCDF: '//cd_ctx//': '//trim(nf90_strerror(kerr)), ld_local=.true.)
   end subroutine nccheck

   !> Space-separated names of the surrogate's physical parameters (global attribute `parameters`); the
   !! biharmonic viscosity bhm is written as a scalar too, for information, but is not one of them.
   function io_param_list() result(cl)
      character(len=64) :: cl                   !< 'tau0 ahm gprime rdrag trelax'
      cl = 'tau0 ahm gprime rdrag trelax'
   end function io_param_list

   !> Define x, y dimensions and coordinate variables (define mode); returns the dimension ids.
   subroutine nc_def_xy(kid, kdx, kdy, kvx, kvy)
      integer, intent(in)  :: kid               !< netCDF file id
      integer, intent(out) :: kdx, kdy          !< x and y dimension ids
      integer, intent(out) :: kvx, kvy          !< x and y variable ids
      call nccheck(nf90_def_dim(kid, 'x', nn_nx, kdx), 'def_dim x')
      call nccheck(nf90_def_dim(kid, 'y', nn_ny, kdy), 'def_dim y')
      call nccheck(nf90_def_var(kid, 'x', NF90_DOUBLE, [kdx], kvx), 'def_var x')
      call nccheck(nf90_put_att(kid, kvx, 'standard_name', 'projection_x_coordinate'), 'att x')
      call nccheck(nf90_put_att(kid, kvx, 'long_name', 'x of the T points (cell centres)'), 'att x')
      call nccheck(nf90_put_att(kid, kvx, 'units', 'm'), 'att x')
      call nccheck(nf90_put_att(kid, kvx, 'axis', 'X'), 'att x')
      call nccheck(nf90_def_var(kid, 'y', NF90_DOUBLE, [kdy], kvy), 'def_var y')
      call nccheck(nf90_put_att(kid, kvy, 'standard_name', 'projection_y_coordinate'), 'att y')
      call nccheck(nf90_put_att(kid, kvy, 'long_name', 'y of the T points (cell centres)'), 'att y')
      call nccheck(nf90_put_att(kid, kvy, 'units', 'm'), 'att y')
      call nccheck(nf90_put_att(kid, kvy, 'axis', 'Y'), 'att y')
   end subroutine nc_def_xy

   !> Define (ld_def) or write the physical parameters as scalar variables and the `parameters` attribute.
   subroutine nc_put_params(kid, ld_def)
      integer, intent(in) :: kid                !< netCDF file id
      logical, intent(in) :: ld_def             !< .true.: define (define mode); .false.: write the values
      call one('tau0',   'wind stress amplitude',             'N m-2',  rn_tau0)
      call one('ahm',    'Laplacian lateral viscosity',       'm2 s-1', merge(rn_ahm, 0._wp, ln_dynldf_lap))
      call one('gprime', 'reduced gravity',                   'm s-2',  rn_gprime)
      call one('rdrag',  'linear drag coefficient',           's-1',    rn_rdrag)
      call one('trelax', 'temperature relaxation time',       'days',   rn_trelax)
      call one('bhm', 'biharmonic lateral viscosity (not a surrogate parameter)', 'm4 s-1', &
         &     merge(rn_bhm, 0._wp, ln_dynldf_blp))
      if (ld_def) call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'parameters', trim(io_param_list())), 'att parameters')
   contains
      !> Define or write one scalar parameter.
      subroutine one(cd_n, cd_l, cd_u, pv)
         character(len=*), intent(in) :: cd_n   !< variable name
         character(len=*), intent(in) :: cd_l   !< long name
         character(len=*), intent(in) :: cd_u   !< units
         real(wp), intent(in) :: pv             !< value
         integer :: iv
         if (ld_def) then
            call nccheck(nf90_def_var(kid, cd_n, NF90_DOUBLE, iv), 'def_var '//cd_n)
            call nccheck(nf90_put_att(kid, iv, 'long_name', cd_l), 'att '//cd_n)
            call nccheck(nf90_put_att(kid, iv, 'units', cd_u), 'att '//cd_n)
         else
            call nccheck(nf90_inq_varid(kid, cd_n, iv), 'inq '//cd_n)
            call nccheck(nf90_put_var(kid, iv, pv), 'put '//cd_n)
         end if
      end subroutine one
   end subroutine nc_put_params

   !> Create the fields file (rank 0) when nn_write > 0.
   subroutine io_init()
      integer :: idx, idy, idt, ivx, ivy, ivm, jf
      character(len=lc) :: clf
      if (nn_write == 0) return
      if (.not. lwp) return
      allocate(zglo(nn_nx, nn_ny))
      clf = trim(cn_exp)//'_fields.nc'
      call nccheck(nf90_create(trim(clf), ior(NF90_CLOBBER, NF90_64BIT_OFFSET), ncid), 'create '//trim(clf))
      call nc_def_xy(ncid, idx, idy, ivx, ivy)
      call nccheck(nf90_def_dim(ncid, 'time', NF90_UNLIMITED, idt), 'def_dim time')
      call nccheck(nf90_def_var(ncid, 'time', NF90_DOUBLE, [idt], nvtime), 'def_var time')
      call nccheck(nf90_put_att(ncid, nvtime, 'standard_name', 'time'), 'att time')
      call nccheck(nf90_put_att(ncid, nvtime, 'units', cp_tunits), 'att time')
      call nccheck(nf90_put_att(ncid, nvtime, 'calendar', 'standard'), 'att time')
      call nccheck(nf90_put_att(ncid, nvtime, 'axis', 'T'), 'att time')
      call nccheck(nf90_def_var(ncid, 'step', NF90_INT, [idt], nvstep), 'def_var step')
      call nccheck(nf90_put_att(ncid, nvstep, 'long_name', 'model time step index kt (time = kt * dt)'), 'att step')
      call nccheck(nf90_def_var(ncid, 'mask', NF90_INT, [idx, idy], ivm), 'def_var mask')
      call nccheck(nf90_put_att(ncid, ivm, 'long_name', 'ocean mask at T points'), 'att mask')
      call nccheck(nf90_put_att(ncid, ivm, 'flag_values', [0, 1]), 'att mask')
      call nccheck(nf90_put_att(ncid, ivm, 'flag_meanings', 'land ocean'), 'att mask')
      do jf = 1, jpfld
         call nccheck(nf90_def_var(ncid, trim(cp_fld(jf)), NF90_DOUBLE, [idx, idy, idt], nvfld(jf)), 'def_var '//cp_fld(jf))
         call nccheck(nf90_put_att(ncid, nvfld(jf), 'standard_name', trim(cp_std(jf))), 'att')
         call nccheck(nf90_put_att(ncid, nvfld(jf), 'long_name', trim(cp_long(jf))), 'att')
         call nccheck(nf90_put_att(ncid, nvfld(jf), 'units', trim(cp_units(jf))), 'att')
      end do
      call nc_put_params(ncid, .true.)
      call global_atts(ncid, 'oceanbridge gyre: reduced-gravity double gyre, fields')
      call nccheck(nf90_enddef(ncid), 'enddef '//trim(clf))
      call nccheck(nf90_put_var(ncid, ivx, xt_glo), 'put x')
      call nccheck(nf90_put_var(ncid, ivy, yt_glo), 'put y')
      call nccheck(nf90_put_var(ncid, ivm, nint(tmask_glo)), 'put mask')
      call nc_put_params(ncid, .false.)
      call nccheck(nf90_sync(ncid), 'sync')
      nrec = 0
   end subroutine io_init

   !> Global attributes common to every gyre file.
   subroutine global_atts(kid, cd_title)
      integer, intent(in) :: kid                !< netCDF file id
      character(len=*), intent(in) :: cd_title  !< title
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'title', cd_title), 'att title')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'Conventions', 'CF-1.8'), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'source', 'oceanbridge gyre (Fortran, MPI)'), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'experiment', trim(cn_exp)), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'grid', 'Arakawa C: T cell centres at (x,y); u on east faces (x+dx/2,y); '// &
         &                      'v on north faces (x,y+dy/2)'), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'dt', rn_dt), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'dx', rn_dx), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'dy', rn_dy), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'h0', rn_h0), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'f0', rn_f0), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'beta', rn_beta), 'att')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'shlat', rn_shlat), 'att')
      ! the constants that turn the state into energies and heat (models/ocean_metrics.read_setup), so that a
      ! file alone suffices to compute them, without the run's output.namelist beside it
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'rho0', rn_rho0), 'att rho0')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'cp', rcp), 'att cp')
      call nccheck(nf90_put_att(kid, NF90_GLOBAL, 'grav', grav), 'att grav')
   end subroutine global_atts

   !> Write one record at step kt when kt is a multiple of nn_write (collective: every rank takes part).
   subroutine io_write(kt, px)
      integer, intent(in) :: kt                 !< time step index of the state
      real(wp), intent(in) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state
      integer :: jf
      if (nn_write == 0) return
      if (mod(kt, nn_write) /= 0) return
      if (.not. allocated(zglo)) allocate(zglo(1,1))
      if (lwp) nrec = nrec + 1
      do jf = 1, jpfld
         call mpp_gather(px(:,:,jf), zglo)
         if (lwp) call nccheck(nf90_put_var(ncid, nvfld(jf), zglo, start=[1, 1, nrec], count=[nn_nx, nn_ny, 1]), &
            &                  'put '//cp_fld(jf))
      end do
      if (lwp) then
         call nccheck(nf90_put_var(ncid, nvtime, [kt * rn_dt], start=[nrec], count=[1]), 'put time')
         call nccheck(nf90_put_var(ncid, nvstep, [kt], start=[nrec], count=[1]), 'put step')
         call nccheck(nf90_sync(ncid), 'sync fields')
      end if
   end subroutine io_write

   !> Close the fields file.
   subroutine io_close()
      if (ncid >= 0) call nccheck(nf90_close(ncid), 'close fields')
      ncid = -1
   end subroutine io_close

end module gyre_io
