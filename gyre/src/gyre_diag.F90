!> @file gyre_diag.F90
!> @brief Diagnostics time series (<cn_exp>_diag.nc): kinetic energy, volume, heat content.
!>
!> Global sums are decomposition-independent: the per-point contributions are gathered on rank 0 and summed
!> in global index order with compensated (Neumaier) summation.
module gyre_diag
   use netcdf
   use gyre_par
   use gyre_mpp, only: ni, nj, lwp, mpp_gather
   use gyre_dom, only: tmask
   use gyre_io,  only: nccheck, nc_put_params, global_atts, cp_tunits
   implicit none
   private

   public :: dia_init, dia_step, dia_close

   integer :: ncid = -1, nrec = 0, nvt, nvs, nvke, nvvol, nvdvol, nvheat, nvumax, nvhmin
   real(wp), allocatable :: zwk(:,:,:), zglo(:,:)

contains

   !> Create the diagnostics file (rank 0) when nn_diag > 0.
   subroutine dia_init()
      integer :: idt
      character(len=lc) :: clf
      if (nn_diag == 0) return
      allocate(zwk(1-nn_hls:ni+nn_hls, 1-nn_hls:nj+nn_hls, 3))
      zwk = 0._wp
      allocate(zglo(merge(nn_nx, 1, lwp), merge(nn_ny, 1, lwp)))
      if (.not. lwp) return
      clf = trim(cn_exp)//'_diag.nc'
      call nccheck(nf90_create(trim(clf), ior(NF90_CLOBBER, NF90_64BIT_OFFSET), ncid), 'create '//trim(clf))
      call nccheck(nf90_def_dim(ncid, 'time', NF90_UNLIMITED, idt), 'def_dim time')
      call nccheck(nf90_def_var(ncid, 'time', NF90_DOUBLE, [idt], nvt), 'def_var time')
      call nccheck(nf90_put_att(ncid, nvt, 'standard_name', 'time'), 'att')
      call nccheck(nf90_put_att(ncid, nvt, 'units', cp_tunits), 'att')
      call nccheck(nf90_put_att(ncid, nvt, 'calendar', 'standard'), 'att')
      call nccheck(nf90_def_var(ncid, 'step', NF90_INT, [idt], nvs), 'def_var step')
      call defv('ke', 'kinetic energy of the upper layer, rho0 * sum(h |u|^2 / 2) dx dy', 'J', nvke)
      call defv('volume', 'volume of the upper layer, sum(h) dx dy', 'm3', nvvol)
      call defv('volume_anomaly', 'volume minus the rest volume, rgfac * sum(ssh) dx dy', 'm3', nvdvol)
      call defv('heat', 'heat content of the upper layer, rho0 cp sum(h T) dx dy', 'J', nvheat)
      call defv('umax', 'maximum speed |u| or |v| on velocity points', 'm s-1', nvumax)
      call defv('hmin', 'minimum layer thickness over the ocean (the layer outcrops at 0)', 'm', nvhmin)
      call nc_put_params(ncid, .true.)
      call global_atts(ncid, 'oceanbridge gyre: diagnostics time series')
      call nccheck(nf90_enddef(ncid), 'enddef '//trim(clf))
      call nc_put_params(ncid, .false.)
      nrec = 0
   contains
      !> Define one time-series variable.
      subroutine defv(cd_n, cd_l, cd_u, kv)
         character(len=*), intent(in) :: cd_n   !< variable name
         character(len=*), intent(in) :: cd_l   !< long name
         character(len=*), intent(in) :: cd_u   !< units
         integer, intent(out) :: kv             !< variable id
         call nccheck(nf90_def_var(ncid, cd_n, NF90_DOUBLE, [idt], kv), 'def_var '//cd_n)
         call nccheck(nf90_put_att(ncid, kv, 'long_name', cd_l), 'att')
         call nccheck(nf90_put_att(ncid, kv, 'units', cd_u), 'att')
      end subroutine defv
   end subroutine dia_init

   !> Compute and write the diagnostics at step kt when kt is a multiple of nn_diag (collective).
   subroutine dia_step(kt, px, ld_print)
      integer, intent(in) :: kt                 !< time step index of the state
      real(wp), intent(in) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state with valid halos
      logical, intent(in) :: ld_print           !< also print the values on stdout
      integer :: ji, jj, jw
      real(wp) :: zh, zs(3), zdA, zumax, zhmin
      if (nn_diag == 0) return
      if (mod(kt, nn_diag) /= 0 .and. .not. ld_print) return
      do jj = 1, nj
         do ji = 1, ni
            zh = rn_h0 + rgfac * px(ji,jj,jp_ssh)
            zwk(ji,jj,1) = 0.25_wp * zh * (px(ji-1,jj,jp_u)**2 + px(ji,jj,jp_u)**2 + px(ji,jj-1,jp_v)**2 &
               &                          + px(ji,jj,jp_v)**2) * tmask(ji,jj)
            zwk(ji,jj,2) = px(ji,jj,jp_ssh) * tmask(ji,jj)
            zwk(ji,jj,3) = zh * px(ji,jj,jp_tem) * tmask(ji,jj)
         end do
      end do
      zumax = max(maxval(abs(px(1:ni,1:nj,jp_u))), maxval(abs(px(1:ni,1:nj,jp_v))))
      call umax_reduce(zumax)
      zhmin = -minval(rn_h0 + rgfac * px(1:ni,1:nj,jp_ssh), mask=tmask(1:ni,1:nj) > 0.5_wp)
      call umax_reduce(zhmin)
      zhmin = -zhmin
      do jw = 1, 3
         call mpp_gather(zwk(:,:,jw), zglo)
         if (lwp) zs(jw) = nsum(zglo)
      end do
      if (.not. lwp) return
      zdA = rn_dx * rn_dy
      zs(1) = rn_rho0 * zdA * zs(1)
      zs(2) = rgfac * zdA * zs(2)
      zs(3) = rn_rho0 * rcp * zdA * zs(3)
      if (mod(kt, nn_diag) == 0) then
         nrec = nrec + 1
         call nccheck(nf90_put_var(ncid, nvt, [kt * rn_dt], start=[nrec]), 'put time')
         call nccheck(nf90_put_var(ncid, nvs, [kt], start=[nrec]), 'put step')
         call nccheck(nf90_put_var(ncid, nvke, [zs(1)], start=[nrec]), 'put ke')
         call nccheck(nf90_put_var(ncid, nvvol, [rvol0() + zs(2)], start=[nrec]), 'put volume')
         call nccheck(nf90_put_var(ncid, nvdvol, [zs(2)], start=[nrec]), 'put volume_anomaly')
         call nccheck(nf90_put_var(ncid, nvheat, [zs(3)], start=[nrec]), 'put heat')
         call nccheck(nf90_put_var(ncid, nvumax, [zumax], start=[nrec]), 'put umax')
         call nccheck(nf90_put_var(ncid, nvhmin, [zhmin], start=[nrec]), 'put hmin')
         call nccheck(nf90_sync(ncid), 'sync diag')
      end if
      if (ld_print) write(*, '(a,i9,a,f10.2,a,es13.6,a,es10.3,a,es13.6,a,f7.3,a,f8.2)') ' kt=', kt, ' day=', &
         & kt*rn_dt/rday, ' ke=', zs(1), ' dvol=', zs(2), ' heat=', zs(3), ' umax=', zumax, ' hmin=', zhmin
   end subroutine dia_step

   !> Rest volume of the upper layer (m3).
   real(wp) function rvol0()
      use gyre_dom, only: nocean
      rvol0 = real(nocean, wp) * rn_h0 * rn_dx * rn_dy
   end function rvol0

   !> Global maximum of a scalar (order-independent).
   subroutine umax_reduce(pu)
      use gyre_mpp, only: mpp_max
      real(wp), intent(inout) :: pu             !< local max in, global max out
      real(wp) :: zv(1)
      zv(1) = pu ; call mpp_max(zv) ; pu = zv(1)
   end subroutine umax_reduce

   !> Neumaier-compensated sum in column-major (global index) order.
   pure real(wp) function nsum(pa)
      real(wp), intent(in) :: pa(:,:)           !< values to sum
      real(wp) :: zs, zc, zt, zv
      integer :: ji, jj
      zs = 0._wp ; zc = 0._wp
      do jj = 1, size(pa, 2)
         do ji = 1, size(pa, 1)
            zv = pa(ji,jj)
            zt = zs + zv
            if (abs(zs) >= abs(zv)) then
               zc = zc + ((zs - zt) + zv)
            else
               zc = zc + ((zv - zt) + zs)
            end if
            zs = zt
         end do
      end do
      nsum = zs + zc
   end function nsum

   !> Close the diagnostics file.
   subroutine dia_close()
      if (ncid >= 0) call nccheck(nf90_close(ncid), 'close diag')
      ncid = -1
   end subroutine dia_close

end module gyre_diag
